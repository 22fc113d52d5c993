"""xent's kernel sets side by side: the same calls on every kernel set this CPU runs (by
default the vector ones: ``avx2`` and ``avx512`` on x86-64), in one process, interleaved.

    python bench/kernel_sets.py [--threads 1] [--repeats 20] [--isas avx2 avx512] [--only TEXT]

Each case is one call (loss + gradient into ``grad_out=``, or a normalizer into ``out=``);
every round calls it once on each kernel set (``xent._core.set_isa``, a pointer store), and
the best time over the rounds is printed with its ratio to the first set's. The kernel set in
use when it ends is the one it started with. Not a test: no assertion, nothing written.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import xent
from xent import _core


def cases(rng, nt):
    """name -> function, over the main paths: the row kernels, rows in lanes, the class axis
    not last, class-major rows, half logits, the sigmoid losses and their Hessian."""
    c = {}
    for (n, k), dt in [
        ((4096, 1000), np.float32),
        ((4096, 1000), np.float64),
        ((256, 50304), np.float32),
        ((2048, 256), np.float32),
        ((26214, 10), np.float32),
        ((26214, 10), np.float64),
        ((8192, 32), np.float32),
        ((4096, 64), np.float32),
    ]:
        z = rng.standard_normal((n, k)).astype(dt)
        y = rng.integers(0, k, n)
        g = np.empty_like(z)
        tag = f"{n}x{k} {np.dtype(dt).name}"
        c[f"ce {tag}"] = lambda z=z, y=y, g=g: xent.softmax_cross_entropy(
            z, y, return_grad=True, grad_out=g, n_threads=nt
        )
        c[f"logsumexp {tag}"] = lambda z=z: xent.logsumexp(z, n_threads=nt)
        c[f"softmax {tag}"] = lambda z=z, g=g: xent.softmax(z, out=g, n_threads=nt)
    z = rng.standard_normal((4096, 1000)).astype(np.float16)
    y = rng.integers(0, 1000, 4096)
    g = np.empty_like(z)
    c["ce 4096x1000 float16"] = lambda: xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=g, n_threads=nt)
    z4 = rng.standard_normal((64, 19, 32, 32)).astype(np.float32)
    y4 = rng.integers(0, 19, (64, 32, 32))
    c["ce axis=1 64x19x32x32 float32"] = lambda: xent.softmax_cross_entropy(
        z4, y4, axis=1, return_grad=True, n_threads=nt
    )
    zf = np.asfortranarray(rng.standard_normal((8192, 32)).astype(np.float32))
    yf = rng.integers(0, 32, 8192)
    c["ce Fortran-order 8192x32 float32"] = lambda: xent.softmax_cross_entropy(zf, yf, return_grad=True, n_threads=nt)
    z2 = rng.standard_normal((2048, 256)).astype(np.float32)
    y2 = rng.integers(0, 256, 2048)
    g2 = np.empty_like(z2)
    c["ce label_smoothing 2048x256 float32"] = lambda: xent.softmax_cross_entropy(
        z2, y2, label_smoothing=0.1, return_grad=True, grad_out=g2, n_threads=nt
    )
    t2 = rng.dirichlet(np.ones(256), 2048).astype(np.float32)
    c["ce targets 2048x256 float32"] = lambda: xent.softmax_cross_entropy(
        z2, t2, return_grad=True, grad_out=g2, n_threads=nt
    )
    for dt in (np.float32, np.float64):
        zs = rng.standard_normal((2048, 256)).astype(dt)
        ts = (rng.random((2048, 256)) < 0.3).astype(dt)
        gs = np.empty_like(zs)
        name = np.dtype(dt).name
        c[f"sigmoid 2048x256 {name}"] = lambda zs=zs, ts=ts, gs=gs: xent.sigmoid_cross_entropy(
            zs, ts, return_grad=True, grad_out=gs, n_threads=nt
        )
        c[f"sigmoid_hessian 2048x256 {name}"] = lambda zs=zs, ts=ts: xent.sigmoid_hessian(zs, ts, n_threads=nt)
        c[f"sigmoid_focal_loss 2048x256 {name}"] = lambda zs=zs, ts=ts: xent.sigmoid_focal_loss(
            zs, ts, return_grad=True, n_threads=nt
        )
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--isas", nargs="+", default=None, help="kernel sets (default: the runnable vector ones)")
    ap.add_argument("--only", default="", help="only the cases whose name contains TEXT")
    args = ap.parse_args()
    runnable = list(_core.config()["runnable_isas"])
    isas = args.isas or [i for i in runnable if i != "scalar"]
    missing = [i for i in isas if i not in runnable]
    if missing:
        ap.error(f"not runnable on this CPU: {', '.join(missing)} (runnable: {', '.join(runnable)})")
    before = _core.config()["isa"]
    print(f"{args.threads} thread(s), best of {args.repeats} interleaved rounds; ms, and the ratio to {isas[0]}")
    print(f"{'case':38s}" + "".join(f"{i:>10s}" for i in isas) + "".join(f"{i + '/' + isas[0]:>16s}" for i in isas[1:]))
    try:
        for name, f in cases(np.random.default_rng(0), args.threads).items():
            if args.only not in name:
                continue
            best = dict.fromkeys(isas, float("inf"))
            for isa in isas:  # warm-up
                _core.set_isa(isa)
                f()
            for _ in range(args.repeats):
                for isa in isas:
                    _core.set_isa(isa)
                    t0 = time.perf_counter()
                    f()
                    best[isa] = min(best[isa], time.perf_counter() - t0)
            ms = [best[i] * 1e3 for i in isas]
            print(f"{name:38s}" + "".join(f"{m:10.3f}" for m in ms) + "".join(f"{m / ms[0]:16.2f}" for m in ms[1:]),
                  flush=True)
    finally:
        _core.set_isa(before)


if __name__ == "__main__":
    main()
