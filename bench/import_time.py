"""How long `import xent` takes in a fresh interpreter, against the 100 ms budget of the
reliability issue, and how much of it is NumPy's own import.

Run: python bench/import_time.py [--runs N]    (prints medians and minima in ms)
"""
import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, sys, time
t = time.perf_counter()
import numpy
t1 = time.perf_counter()
import xent
t2 = time.perf_counter()
print(json.dumps({"numpy": t1 - t, "xent": t2 - t1, "total": t2 - t}))
"""
BUDGET_MS = 100.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    runs = []
    for _ in range(args.runs):
        r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
        runs.append(json.loads(r.stdout))
    print(f"import time over {args.runs} fresh interpreters (ms):")
    for key in ("numpy", "xent", "total"):
        v = [1e3 * r[key] for r in runs]
        print(f"  {key:<6} median {statistics.median(v):7.1f}   min {min(v):7.1f}")
    total = statistics.median(1e3 * r["total"] for r in runs)
    print(f"total / budget ({BUDGET_MS:.0f} ms): {total / BUDGET_MS:.2f}")


if __name__ == "__main__":
    main()
