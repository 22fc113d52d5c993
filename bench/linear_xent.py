"""Fused linear + cross-entropy (xent.linear_cross_entropy) against the materialised paths.

Forward + backward (loss and the gradients of hidden, weight and bias) of
``softmax_cross_entropy(hidden @ weight.T + bias, labels)``, float32, for
  (a) xent.linear_cross_entropy            (never holds the N x V logits)
  (b) PyTorch: F.linear, F.cross_entropy, .backward()   (materialised)
  (c) xent unfused: NumPy matmul, xent.softmax_cross_entropy (gradient over the logits),
      the two gradient matmuls and the bias sum
Each variant runs in a fresh subprocess: inputs are made, the resident-memory peak is reset
(/proc/self/clear_refs) and read back after one call (VmHWM - VmRSS before the call: the
peak extra memory), then the call is timed (median of --repeats). BLAS, xent and torch all
use --threads threads. Writes bench/results/linear_xent.md (or --out).

    python bench/linear_xent.py --threads 1            # N=4096, H=768, V=50304
    python bench/linear_xent.py --threads 2 --quick    # N=1024, H=256, V=8192
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {"a": "xent.linear_cross_entropy", "b": "PyTorch materialised", "c": "xent unfused (NumPy matmul)"}


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def _make_call(variant, h, w, b, y, threads):
    import numpy as np

    import xent

    if variant == "a":
        return lambda: xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, n_threads=threads)
    if variant == "c":
        def unfused():
            z = h @ w.T
            z += b
            loss, g = xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=z, n_threads=threads)
            return loss, g @ w, g.T @ h, g.sum(axis=0)
        return unfused
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    th, tw, tb = (torch.from_numpy(a) for a in (h, w, b))
    ty = torch.from_numpy(y.astype(np.int64))

    def materialised():
        hh, ww, bb = (t.detach().requires_grad_() for t in (th, tw, tb))
        loss = F.cross_entropy(F.linear(hh, ww, bb), ty)
        loss.backward()
        return float(loss), hh.grad, ww.grad, bb.grad
    return materialised


def child(variant, n, hd, v, threads, repeats):
    import numpy as np

    if variant == "b":
        import torch  # noqa: F401  (its import is not the call's memory)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((n, hd), dtype=np.float32)
    w = rng.standard_normal((v, hd), dtype=np.float32) * np.float32(hd**-0.5)
    b = rng.standard_normal(v, dtype=np.float32) * np.float32(0.1)
    y = rng.integers(0, v, n)
    call = _make_call(variant, h, w, b, y, threads)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident size
        reset = True
    except OSError:
        reset = False
    base = _status("VmRSS")
    t0 = time.perf_counter()
    out = call()
    first = time.perf_counter() - t0
    peak = _status("VmHWM")
    loss = float(out[0])
    del out
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"extra": peak - base, "reset": reset, "first": first, "times": times, "loss": loss}))


def _cpu_busy_other():
    """Load average per core (a shared machine: a figure above ~0.5 means noise)."""
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def run(variant, n, hd, v, threads, repeats):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--child", variant, "--sizes", f"{n},{hd},{v}",
           "--threads", str(threads), "--repeats", str(repeats)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="N=1024, H=256, V=8192")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="abc")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "linear_xent.md"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        n, hd, v = (int(s) for s in args.sizes.split(","))
        return child(args.child, n, hd, v, args.threads, args.repeats)
    n, hd, v = (1024, 256, 8192) if args.quick else (4096, 768, 50304)
    load0 = _cpu_busy_other()
    res = {}
    for k in args.variants:
        res[k] = run(k, n, hd, v, args.threads, args.repeats)
        r = res[k]
        print(f"({k}) {VARIANTS[k]}: peak extra {r['extra'] / 2**20:.0f} MiB, "
              f"median {statistics.median(r['times']):.3f} s, loss {r['loss']:.6f}", flush=True)
    load1 = _cpu_busy_other()
    lines = [
        "# Fused linear + cross-entropy: memory and time (forward + backward, float32)",
        "",
        f"N={n}, H={hd}, V={v}; {args.threads} thread(s) for BLAS, xent and torch; median of "
        f"{args.repeats} timed calls after one measured call; each variant in a fresh process.",
        f"Load average per core before/after: {load0:.2f} / {load1:.2f} (the machine is shared: "
        "above ~0.5 other work competes for the cores and the times are noisy).",
        f"Command: `python bench/linear_xent.py --threads {args.threads}{' --quick' if args.quick else ''}`",
        "",
        "| variant | peak extra memory (MiB) | time (s) | loss |",
        "|---|---|---|---|",
    ]
    for k, r in res.items():
        lines.append(f"| ({k}) {VARIANTS[k]} | {r['extra'] / 2**20:.0f} | {statistics.median(r['times']):.3f} "
                     f"| {r['loss']:.6f} |")
    if "a" in res and "b" in res:
        mem = res["a"]["extra"] / res["b"]["extra"]
        tim = statistics.median(res["a"]["times"]) / statistics.median(res["b"]["times"])
        lines += ["", f"(a)/(b) memory: {mem:.3f} (target <= 0.25); (a)/(b) time: {tim:.3f} (target <= 1.2)"]
        print(lines[-1])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return None


if __name__ == "__main__":
    main()
