"""Half-precision logits: time of float16 / bfloat16 softmax cross-entropy (loss + gradient,
integer labels, mean) and sigmoid cross-entropy (loss + gradient, 0/1 targets of the
logits' dtype, mean) over the float32 time, for xent and for PyTorch on its own half
tensors, with the copy of the logits (one read, one write) as the memory limit.

    python bench/half.py [--quick] [--threads 1,2] [--repeats 7]

xent reads the half logits and writes the half gradient directly (2 bytes an element each
way instead of 4) and computes in float32; where the float32 call is bound by memory
traffic the half call should take about half its time; where it is bound by the
exponentials (rows that fit in cache, one thread) it takes about the same. Each
configuration is timed in turn, round after round, and the minimum over rounds is kept,
so that load from other processes hits every dtype alike. See bench/README.md.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

import xent


def _torch_fn(kind, z, y, threads):
    torch = common.optional_torch(threads, note=False)
    if torch is None:
        return None
    F = torch.nn.functional

    def tensor(a):
        if a.dtype.name == "bfloat16":
            return torch.from_numpy(a.view(np.uint16)).view(torch.bfloat16)
        return torch.from_numpy(a)

    t = tensor(z).requires_grad_(True)
    yt = torch.from_numpy(y) if kind == "softmax" else tensor(y)

    def run():
        loss = F.cross_entropy(t, yt) if kind == "softmax" else F.binary_cross_entropy_with_logits(t, yt)
        return torch.autograd.grad(loss, t)

    try:
        run()
    except RuntimeError:  # a dtype PyTorch's CPU kernels do not have
        return None
    return run


def _configs(kind, shape, threads, dtypes):
    """{(dtype, name): callable} for one workload and thread count."""
    base = common.Workload(kind, shape).make()
    fns = {}
    for dt in dtypes:
        z = base["logits"].astype(common.np_dtype(dt))
        dst, g = np.empty_like(z), np.empty_like(z)
        fns[dt, "copy"] = functools.partial(np.copyto, dst, z)
        if kind == "softmax":
            y = base["labels"]
            loss = xent.softmax_cross_entropy
        else:
            y = base["targets"].astype(z.dtype)
            loss = xent.sigmoid_cross_entropy
        fns[dt, "xent"] = functools.partial(loss, z, y, return_grad=True, grad_out=g, n_threads=threads)
        torch_fn = _torch_fn(kind, z, y, threads)
        if torch_fn is not None:
            fns[dt, "torch"] = torch_fn
    return fns


def _best_times(fns, repeats):
    """Minimum seconds per configuration over rounds that each time every one in turn."""
    best = {}
    for _ in range(repeats):
        for key, fn in fns.items():
            fn()  # warm: caches, page faults of a fresh gradient
            t0 = time.perf_counter()
            fn()
            best[key] = min(best.get(key, np.inf), time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="256 x 50304 instead of 2048 x 50304, sigmoid 1M elements instead of 10M"
    )
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=7, help="rounds; each times every configuration once")
    args = p.parse_args(argv)
    shapes = [
        ("softmax", (4096, 1000)),
        ("softmax", (256, 50304) if args.quick else (2048, 50304)),
        ("sigmoid", (1000, 1000) if args.quick else (10_000, 1000)),
    ]
    dtypes = ["float32", "float16"] + (["bfloat16"] if common.have_bfloat16() else [])
    isa = xent.show_config(print_out=False)["isa"]
    print(f"xent {xent.__version__}, isa {isa}; minimum of {args.repeats} rounds; ratio: time / float32 time")
    head = ("workload", "thr", "dtype", "copy ms", "xent ms", "ratio", "torch ms", "ratio")
    print("{:<20} {:>3} {:<9} {:>8} {:>8} {:>5} {:>9} {:>5}".format(*head))
    for kind, shape in shapes:
        for th in [int(s) for s in args.threads.split(",")]:
            best = _best_times(_configs(kind, shape, th, dtypes), args.repeats)

            def ms(dt, name, best=best):
                return 1e3 * best[dt, name] if (dt, name) in best else float("nan")

            for dt in dtypes:
                xr = ms(dt, "xent") / ms("float32", "xent")
                tr = ms(dt, "torch") / ms("float32", "torch")
                name = f"{kind} {shape[0]}x{shape[1]}"
                print(f"{name:<20} {th:>3} {dt:<9} {ms(dt, 'copy'):8.2f} {ms(dt, 'xent'):8.2f} "
                      f"{xr:5.2f} {ms(dt, 'torch'):9.2f} {tr:5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
