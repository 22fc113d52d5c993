"""Softmax cross-entropy with the class axis not last: PyTorch's (N, C, H, W) layout with
axis=1 (segmentation), integer labels, loss + gradient, mean reduction, grad_out reused.

    python bench/class_axis.py [--threads 1] [--repeats 15]

Prints per shape the best time over the repeats of: xent with axis=1 (the rows-in-lanes
kernel, cpp/src/kernels/inner-inl.hpp), xent on the same logits moved to channels-last
(axis -1, the row kernels), PyTorch's F.cross_entropy forward + backward on (N, C, H, W)
if torch is installed, and a np.copyto of the logits (the memory floor); with the ratios
PyTorch / xent and xent / copy. The cases are timed interleaved, one call of each per round.
Not a test: no assertion, nothing written.
"""
from __future__ import annotations

import argparse

import numpy as np
from common import optional_torch
from sigmoid_options import best_ms

import xent

SHAPES = [(8, 21, 128, 128), (4, 150, 64, 64), (16, 3, 128, 128), (64, 10, 16, 16), (2, 1000, 16, 16)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch = optional_torch(args.threads)
    F = torch.nn.functional if torch is not None else None
    nt = args.threads
    rng = np.random.default_rng(0)
    print(f"{args.threads} thread(s), float32, best of {args.repeats} (ms)")
    print(f"{'N x C x H x W':>18s} {'axis=1':>8s} {'last':>8s} {'torch':>8s} {'copy':>7s}  torch/xent  xent/copy")
    for shape in SHAPES:
        N, C, H, W = shape
        z = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, C, (N, H, W))
        g = np.empty_like(z)
        zl = np.ascontiguousarray(np.moveaxis(z, 1, -1))
        gl = np.empty_like(zl)
        c = np.empty_like(z)
        calls = {
            "axis1": lambda z=z, y=y, g=g: xent.softmax_cross_entropy(z, y, axis=1, return_grad=True, grad_out=g,
                                                                      n_threads=nt),
            "last": lambda zl=zl, y=y, gl=gl: xent.softmax_cross_entropy(zl, y, return_grad=True, grad_out=gl,
                                                                         n_threads=nt),
            "copy": lambda c=c, z=z: np.copyto(c, z),
        }
        if torch is not None:
            zt = torch.from_numpy(z.copy()).requires_grad_()
            yt = torch.from_numpy(y)

            def torch_call(zt=zt, yt=yt):
                zt.grad = None
                F.cross_entropy(zt, yt).backward()

            calls["torch"] = torch_call
        ms = best_ms(calls, args.repeats)
        t = ms.get("torch", float("nan"))
        name = "x".join(map(str, shape))
        print(f"{name:>18s} {ms['axis1']:8.3f} {ms['last']:8.3f} {t:8.3f} {ms['copy']:7.3f}  "
              f"{t / ms['axis1']:9.2f}x  {ms['axis1'] / ms['copy']:8.2f}x")


if __name__ == "__main__":
    main()
