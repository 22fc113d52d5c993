"""Class-major arrays: a Fortran-order array (or a transposed view) against the same values
in C order, loss + gradient, mean reduction, grad_out reused in the input's own order.

    python bench/layouts.py [--threads 1] [--repeats 15]

Prints per case the best time over the repeats of xent on C-order and on Fortran-order
arrays, the ratio of the two, NumPy's transposing copy ``np.ascontiguousarray`` of the
Fortran-order logits (the user's workaround: one copy, before any loss), and PyTorch's
forward + backward on the Fortran-order tensor if torch is installed, with its ratio to xent's
Fortran-order time. Softmax cross-entropy with integer labels, the sigmoid loss, and
``sigmoid_hessian`` with its gradient. The cases are timed interleaved, one call of each per
round. Not a test: no assertion, nothing written.
"""
from __future__ import annotations

import argparse

import numpy as np
from common import optional_torch
from sigmoid_options import best_ms

import xent

SOFTMAX = [(8192, 32), (1024, 256), (4096, 1000), (3000, 1000), (2048, 4096)]
SIGMOID = [(8192, 32), (1024, 256)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch = optional_torch(args.threads)
    F = torch.nn.functional if torch is not None else None
    nt = args.threads
    rng = np.random.default_rng(0)
    print(f"{nt} thread(s), best of {args.repeats} (ms); F: Fortran order")
    print(f"{'case':>28s} {'C order':>8s} {'F order':>8s} {'F / C':>6s} {'np copy':>8s} {'torch F':>8s} "
          f"{'torch/xent':>10s}")
    cases = []
    for dt in (np.float32, np.float64):
        for shape in SOFTMAX:
            cases.append(("softmax", shape, dt))
        for shape in SIGMOID:
            cases.append(("sigmoid", shape, dt))
            cases.append(("hessian", shape, dt))
    for kind, shape, dt in cases:
        z = (rng.standard_normal(shape) * 3).astype(dt)
        zf = np.asfortranarray(z)
        g, gf = np.empty_like(z), np.empty_like(zf)
        if kind == "softmax":
            y = rng.integers(0, shape[1], shape[0])

            def run(a, b, y=y):
                return xent.softmax_cross_entropy(a, y, return_grad=True, grad_out=b, n_threads=nt)
        else:
            t = rng.random(shape).astype(dt)
            tf = np.asfortranarray(t)

            if kind == "sigmoid":
                def run(a, b, t=t, tf=tf):
                    return xent.sigmoid_cross_entropy(a, tf if a.flags.f_contiguous else t, return_grad=True,
                                                      grad_out=b, n_threads=nt)
            else:
                h, hf = np.empty_like(z), np.empty_like(zf)

                def run(a, b, t=t, tf=tf, h=h, hf=hf):
                    f = a.flags.f_contiguous
                    return xent.sigmoid_hessian(a, tf if f else t, return_grad=True, out=hf if f else h, grad_out=b,
                                                n_threads=nt)
        calls = {
            "C": lambda run=run, z=z, g=g: run(z, g),
            "F": lambda run=run, zf=zf, gf=gf: run(zf, gf),
            "copy": lambda zf=zf: np.ascontiguousarray(zf),
        }
        if torch is not None and kind != "hessian":
            zt = torch.from_numpy(zf).requires_grad_()  # (a non-contiguous tensor, as given)
            if kind == "softmax":
                yt = torch.from_numpy(y)

                def torch_call(zt=zt, yt=yt):
                    zt.grad = None
                    F.cross_entropy(zt, yt).backward()
            else:
                tt = torch.from_numpy(tf)

                def torch_call(zt=zt, tt=tt):
                    zt.grad = None
                    F.binary_cross_entropy_with_logits(zt, tt).backward()
            calls["torch"] = torch_call
        ms = best_ms(calls, args.repeats)
        tms = ms.get("torch", float("nan"))
        name = f"{kind} {shape[0]}x{shape[1]} {np.dtype(dt).name}"
        print(f"{name:>28s} {ms['C']:8.3f} {ms['F']:8.3f} {ms['F'] / ms['C']:5.2f}x {ms['copy']:8.3f} {tms:8.3f} "
              f"{tms / ms['F']:9.2f}x")


if __name__ == "__main__":
    main()
