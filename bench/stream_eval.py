"""Streaming evaluation of a file larger than the evaluator's memory budget.

Writes a .npy of float32 logits (default 20,000 x 50,304 = 4.02 GB) and its labels into a
temporary folder, chunk by chunk (the generator stays well under 500 MB), then runs
``python -m xent eval LOGITS LABELS --json`` in a subprocess and reports its wall time, rows per
second and peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the evaluating
process alone). Fails (exit 1) if the peak reaches 500 MB. The folder is deleted at the end.

By default the file is flushed and dropped from the page cache before the run
(``posix_fadvise(DONTNEED)``), so the evaluator reads it from disk ("cold"); ``--warm`` skips
that (the file is then read from the page cache, if it fits). It is a benchmark, not a test:

    python bench/stream_eval.py                 # ~1-3 minutes, needs ~4.1 GB of free disk
    python bench/stream_eval.py --rows 2000     # a quick look (400 MB)
    python bench/stream_eval.py --dir /mnt/big --threads 4 --warm
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

LIMIT_MB = 500
GEN_ROWS = 250  # rows generated per write: 250 x 50,304 float32 = 50 MB


def write_logits(path: str, n: int, c: int, seed: int = 0) -> np.ndarray:
    """Writes (n, c) float32 logits with some signal on the labels; returns the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, c)})
        for i in range(0, n, GEN_ROWS):
            k = min(GEN_ROWS, n - i)
            z = rng.standard_normal((k, c), dtype=np.float32)
            z[np.arange(k), labels[i : i + k]] += rng.uniform(0, 8, k).astype(np.float32)
            f.write(z.tobytes())
        f.flush()
        os.fsync(f.fileno())
    return labels


def drop_from_page_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--classes", type=int, default=50_304)
    ap.add_argument("--threads", type=int, default=None, help="xent eval --threads (default: all cores)")
    ap.add_argument("--chunk-rows", type=int, default=None, help="xent eval --chunk-rows (default ~64 MB)")
    ap.add_argument("--dir", default=None, help="where to write the temporary files (default: the system's)")
    ap.add_argument("--warm", action="store_true", help="leave the file in the page cache")
    a = ap.parse_args()

    folder = tempfile.mkdtemp(prefix="xent-stream-eval-", dir=a.dir)
    try:
        logits, labels = os.path.join(folder, "logits.npy"), os.path.join(folder, "labels.npy")
        t0 = time.perf_counter()
        y = write_logits(logits, a.rows, a.classes)
        np.save(labels, y)
        gen_s = time.perf_counter() - t0
        size_gb = os.path.getsize(logits) / 1e9
        print(f"wrote {logits}: {a.rows:,} x {a.classes:,} float32 = {size_gb:.2f} GB in {gen_s:.1f} s "
              f"(generator peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
        if not a.warm:
            drop_from_page_cache(logits)
        cmd = [sys.executable, "-m", "xent", "eval", logits, labels, "--json", "--quiet"]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        if a.chunk_rows:
            cmd += ["--chunk-rows", str(a.chunk_rows)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        res = json.loads(r.stdout)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ok = peak_mb < LIMIT_MB and res["n_rows"] == a.rows
    print(f"xent eval ({'page cache' if a.warm else 'cold: read from disk'}, threads "
          f"{a.threads or 'default'}): {wall:.1f} s wall, {a.rows / wall:,.0f} rows/s, "
          f"{size_gb / wall:.2f} GB/s, peak RSS {peak_mb:.0f} MB (limit {LIMIT_MB} MB)")
    print(f"  cross-entropy {res['cross_entropy']:.4f}, accuracy {100 * res['accuracy']:.2f}%, "
          f"top-{res['top_k']} {100 * res['top_k_accuracy']:.2f}%, ECE {100 * res['ece']:.2f}%")
    print(f"  temporary folder {folder} deleted")
    if not ok:
        why = f"peak RSS {peak_mb:.0f} MB >= {LIMIT_MB} MB" if peak_mb >= LIMIT_MB else "wrong row count"
        print(f"FAILED: {why}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
