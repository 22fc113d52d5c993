"""Cost of the sigmoid options and of the focal loss relative to the plain sigmoid
cross-entropy (loss + gradient, mean reduction, one thread, grad_out reused).

    python bench/sigmoid_options.py [--n 262144] [--repeats 60] [--classes 256 32]
        [--dtypes float32 float64] [--threads 1]

Prints, per dtype and row length C (the class axis: n / C rows), the best time over the
repeats (short calls, so a shared machine's preemptions fall out of the minimum) and the
ratio to the plain loss of the same shape; for float16 and bfloat16 (``--dtypes float32
float16 bfloat16``; bfloat16 through ``ml_dtypes``) also the ratio to float32's time of the
same case, when float32 ran first (the Hessian and the loss from probabilities are left
out there: they compute half in float32 copies). ``--n 10000000 --classes 1000`` times
arrays out of cache. Besides the options: ``axis=-1`` (the loss summed
over the class axis, then the mean over rows) and a sample weight per element (a 1-d array
of n logits). Last, ``sigmoid_hessian`` with its gradient, plain and with one weight per row
(an ``(R, 1)`` weight), the latter's ratio to the former; and ``binary_cross_entropy`` (from
probabilities, with its gradient) with ``axis=-1``, the mean and "none", over the elementwise
mean. The cases are timed
interleaved, one call of each per round (this machine's speed changes by up to 30% for
seconds at a time: timed one after the other, a case could miss the fast spells). Not a
test: no assertion, nothing written.
"""
from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

import xent


def best_ms(calls: dict, repeats: int) -> dict:
    """The best time in ms of each call of ``calls`` (name -> function) over ``repeats``
    rounds, each round calling every one once."""
    for f in calls.values():
        f()
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, f in calls.items():
            t0 = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: b * 1e3 for name, b in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=262144)
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--classes", type=int, nargs="+", default=[256, 32])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                    choices=["float32", "float64", "float16", "bfloat16"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    th = args.threads
    for C in args.classes:
        R = max(1, args.n // C)
        f32_ms: dict = {}
        for name in args.dtypes:
            if name == "bfloat16":
                import ml_dtypes

                dt = np.dtype(ml_dtypes.bfloat16)
            else:
                dt = np.dtype(name)
            half = dt.itemsize == 2
            z = (rng.standard_normal((R, C)) * 3).astype(dt)
            t = rng.random((R, C)).astype(dt)
            g = np.empty_like(z)
            # (weights in the compute dtype: float32 for half logits)
            wdt = np.float32 if half else dt
            w, sw, ew = rng.random(C), rng.random(R), rng.random(R * C).astype(wdt)
            sig = xent.sigmoid_cross_entropy
            flat = (z.reshape(-1), t.reshape(-1), g.reshape(-1))
            cases = {
                "plain": (sig, {}, None),
                "weight": (sig, dict(weight=w), None),
                "pos_weight": (sig, dict(pos_weight=w), None),
                "sample_weight": (sig, dict(sample_weight=sw), None),
                "sw per element": (sig, dict(sample_weight=ew), flat),
                "axis=-1": (sig, dict(axis=-1), None),
                "label_smoothing": (sig, dict(label_smoothing=0.1), None),
                "softcap": (sig, dict(softcap=30.0), None),
                "focal gamma=0": (xent.sigmoid_focal_loss, dict(gamma=0.0), None),
                "focal gamma=2": (xent.sigmoid_focal_loss, dict(gamma=2.0), None),
            }
            calls = {name: (lambda f=f, kw=kw, a=(a or (z, t, g)): f(a[0], a[1], return_grad=True, grad_out=a[2],
                                                                     n_threads=th, **kw))
                     for name, (f, kw, a) in cases.items()}
            if not half:
                hess = partial(xent.sigmoid_hessian, z, t, return_grad=True, out=np.empty_like(z), grad_out=g,
                               n_threads=th)
                calls["hessian"] = hess
                calls["hessian sw"] = partial(hess, sample_weight=sw[:, None])
                bce = partial(xent.binary_cross_entropy, 1 / (1 + np.exp(-z)), t, return_grad=True, n_threads=th)
                calls["bce"] = bce
                calls["bce axis=-1"] = partial(bce, axis=-1)
                calls["bce axis=-1 none"] = partial(bce, axis=-1, reduction="none")
            ms = best_ms(calls, args.repeats)
            if dt == np.float32:
                f32_ms = ms
            for case, m in ms.items():
                base = ms[next((b for b in ("hessian", "bce") if case.startswith(b)), "plain")]
                vs32 = f"  x{m / f32_ms[case]:.2f} float32" if half and case in f32_ms else ""
                print(f"{dt.name:8s} C={C:<4d} {case:16s} {m:7.3f} ms  x{m / base:.2f}{vs32}")


if __name__ == "__main__":
    main()
