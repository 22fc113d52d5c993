"""Mid-size calls on 1 and 2 threads, with the pool's polling off and on.

    python bench/thread_calls.py [--rounds 15] [--spin-us 100]

A call on 2 threads hands half its tasks to a pool thread. A sleeping pool thread is woken
through a condition variable (10-20 us on this project's VM), which a 2-thread call of a
few hundred microseconds feels; a polling one (``XENT_SPIN_US``, 100 us by default) takes
the job at once. This script times the same calls on 1 thread, and on 2 threads with the
polling off (``spin_us`` 0) and on, interleaved round by round in one process (medians).
"""
from __future__ import annotations

import os

# (NumPy's OpenBLAS thread polls for ~0.1 s after the import: see bench/README.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time

import numpy as np

import xent
from xent import _core


def cases(rng):
    out = {}
    for r, c in ((256, 256), (512, 1000), (4096, 1000)):
        z = rng.standard_normal((r, c), dtype=np.float32)
        y = rng.integers(0, c, r)
        g = np.empty_like(z)
        out[f"softmax {r}x{c}"] = lambda n, z=z, y=y, g=g: xent.softmax_cross_entropy(
            z, y, return_grad=True, grad_out=g, n_threads=n
        )
    for m in (100_000, 262_144, 1_000_000, 2_000_000):
        z = rng.standard_normal(m, dtype=np.float32)
        t = (rng.random(m) < 0.3).astype(np.float32)
        g = np.empty_like(z)
        out[f"sigmoid {m}"] = lambda n, z=z, t=t, g=g: xent.sigmoid_cross_entropy(
            z, t, return_grad=True, grad_out=g, n_threads=n
        )
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--spin-us", type=float, default=100.0, help="the polling time of the 'on' column")
    args = p.parse_args(argv)
    if xent.show_config(print_out=False)["n_threads"] < 2:
        raise SystemExit("needs 2 usable CPUs")
    before = xent.show_config(print_out=False)["spin_us"]
    modes = {"1 thread": (1, before), "2, polling off": (2, 0.0), f"2, polling {args.spin_us:g} us": (2, args.spin_us)}
    calls = cases(np.random.default_rng(0))
    times = {(c, m): [] for c in calls for m in modes}
    try:
        for _ in range(args.rounds):
            for c, f in calls.items():
                for m, (n, spin) in modes.items():
                    _core.set_spin_us(spin)
                    f(n)  # (after a change of setting: the helper may still be asleep)
                    best = np.inf
                    for _ in range(20):
                        t0 = time.perf_counter()
                        f(n)
                        best = min(best, time.perf_counter() - t0)
                    times[(c, m)].append(best)
    finally:
        _core.set_spin_us(before)
    names = list(modes)
    print(f"{'call (float32, loss + gradient)':32s}" + "".join(f"{m:>22s}" for m in names) + "   on / off")
    for c in calls:
        med = [float(np.median(times[(c, m)])) * 1e6 for m in names]
        print(f"{c:32s}" + "".join(f"{v:19.1f} us" for v in med) + f"   {med[2] / med[1]:9.2f}x")


if __name__ == "__main__":
    main()
