"""Cost of the softmax cross-entropy options relative to the plain loss (integer labels,
loss + gradient, mean reduction, one thread, grad_out reused), as bench/sigmoid_options.py
does for the sigmoid options.

    python bench/softmax_options.py [--rows 2048] [--classes 256] [--repeats 60]

Prints, per dtype, the best time over the repeats (the cases interleaved, as in
bench/sigmoid_options.py) and the ratio to the plain loss. Not a test: no assertion,
nothing written.
"""
from __future__ import annotations

import argparse

import numpy as np
from sigmoid_options import best_ms

import xent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--classes", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=60)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    R, C = args.rows, args.classes
    for dt in (np.float32, np.float64):
        z = (rng.standard_normal((R, C)) * 3).astype(dt)
        y = rng.integers(0, C, R)
        y_ign = np.where(rng.random(R) < 0.1, -100, y)
        g = np.empty_like(z)
        cases = {
            "plain": dict(),
            "weight": dict(weight=rng.random(C) + 0.5),
            "sample_weight": dict(sample_weight=rng.random(R) + 0.5),
            "label_smoothing": dict(label_smoothing=0.1),
            "smoothing+weight": dict(label_smoothing=0.1, weight=rng.random(C) + 0.5),
            "z_loss": dict(z_loss=1e-4),
            "softcap": dict(softcap=30.0),
            "ignore_index": dict(ignore_index=-100),
        }
        calls = {
            name: (lambda kw=kw, z=z, labels=(y_ign if "ignore_index" in kw else y), g=g:
                   xent.softmax_cross_entropy(z, labels, return_grad=True, grad_out=g, n_threads=1, **kw))
            for name, kw in cases.items()
        }
        ms = best_ms(calls, args.repeats)
        for name, m in ms.items():
            print(f"{np.dtype(dt).name:8s} {name:16s} {m:7.3f} ms  x{m / ms['plain']:.2f}")


if __name__ == "__main__":
    main()
