"""Side-by-side benchmark of xent against the memory limits and its peers.

    python bench/run.py [--quick] [--threads 1,2] [--no-sweep] [--only TEXT] [--tag NAME]

Times each implementation on the same inputs (median over repeats after warm-up calls) at
every requested thread count, after checking its loss and gradient against xent's: the
issue's fixed workloads (softmax cross-entropy 64x10, 4096x1000, 2048x50304 in float32 and
float64, the last two in float16 and bfloat16 too, forward alone, and sigmoid cross-entropy
on 10M elements) and a sweep of C from 2
to 262,144 at a fixed total size. Writes ``bench/results/<tag>.json``, ``<tag>.md`` and
``<tag>-sweep.png`` (``<tag>-quick.*`` with --quick). See bench/README.md.

Layout: common.py (workloads, timing, machine state), impls.py (the implementations),
report.py (tables and plot), this file (the run).
"""
from __future__ import annotations

import os

# NumPy's OpenBLAS starts a thread per core that polls for work for about 0.1 s after the
# import and after each BLAS call. No workload here calls BLAS, and on a 2-core machine that
# thread took a core from the call being timed (2-thread calls ran at the 1-thread time then).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gc
import json
import platform
import re
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import report
from impls import IMPLS, Xent

import xent

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def check_against(ref, got, wl) -> dict:
    """Loss difference, and gradient difference in units of the largest possible entry (1/N)."""
    # half: a few half ulp (2**-11, 2**-8) of the loss, and of the largest gradient entry 1/N
    tol = {"float64": 1e-9, "float16": 2e-3, "bfloat16": 1.6e-2}.get(wl.dtype, 1e-4)
    d_loss = abs(got[0] - ref[0])
    ok = d_loss <= tol * max(1.0, abs(ref[0]))
    res = {"loss_abs_diff": d_loss}
    if ref[1] is not None and got[1] is not None:
        d_grad = float(np.max(np.abs(np.asarray(got[1], dtype=np.float64) - ref[1]), initial=0.0)) * wl.n_terms
        res["grad_abs_diff_times_n"] = d_grad
        ok = ok and d_grad <= tol
    res["agrees"] = ok
    return res


def run_workload(wl, impls, threads: int, quick: bool, group: str) -> list[report.Row]:
    data = wl.make()
    budget, min_samples = (0.25, 3) if quick else (1.5, 5)
    rows, ref = [], None
    for impl in impls:
        if not impl.applies(wl) or (wl.dtype in common.HALF and not impl.half_ok):
            continue
        row = report.Row(group, wl.name, impl.name, threads, "ok", n_classes=wl.n_classes)
        fn = None
        try:
            fn = impl.setup(wl, data, threads)
            out = impl.result(fn(), wl)
            if type(impl) is Xent:
                ref = (out[0], None if out[1] is None else np.asarray(out[1], dtype=np.float64))
            elif out is not None and ref is not None:
                row.check = check_against(ref, out, wl)
                if not row.check["agrees"]:
                    row.note = "DISAGREES with xent"
                    print(f"  warning: {impl.name} disagrees with xent on {wl.name}: {row.check}", file=sys.stderr)
            del out
            t = common.measure(fn, budget_s=budget, min_samples=min_samples)
        except Exception as e:  # a peer failing must not stop the run
            row.status, row.note = "failed", f"{type(e).__name__}: {e}"
            print(f"  {impl.name} failed on {wl.name}: {row.note}", file=sys.stderr)
            rows.append(row)
            continue
        finally:
            fn = None
            gc.collect()
        row.ms, row.min_ms, row.samples, row.number = 1e3 * t.median_s, 1e3 * t.min_s, t.samples, t.number
        row.gbps = wl.nbytes / t.median_s / 1e9
        rows.append(row)
        print(f"  {wl.name:<24} {impl.name:<20} {row.ms:10.4f} ms  ({t.samples} x {t.number} calls)", flush=True)
    by = {r.impl: r.ms for r in rows if r.ms is not None}
    x = by.get(Xent.name)
    limit = next((by.get(i.name) for i in impls if i.is_limit and i.applies(wl) and by.get(i.name)), None)
    for r in rows:
        impl = next(i for i in impls if i.name == r.impl)
        if r.ms is None:
            continue
        if limit and not impl.is_limit:
            r.over_limit = r.ms / limit
        base = by.get(impl.versus) if impl.versus else x
        if base and impl.is_peer:
            r.peer_over_xent = r.ms / base
    return rows


def parse_threads(text: str) -> list[int]:
    counts = []
    for part in text.split(","):
        part = part.strip()
        n = common.default_threads() if part == "all" else int(part)
        if n < 1:
            raise ValueError("thread counts must be >= 1")
        if n not in counts:
            counts.append(n)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smaller workloads and fewer repeats (about a minute)")
    p.add_argument(
        "--threads", default="1,all", help='comma-separated thread counts, "all" = usable CPUs (default: "1,all")'
    )
    p.add_argument("--no-sweep", action="store_true", help="skip the sweep over the number of classes")
    p.add_argument("--only", metavar="TEXT", default=None, help="run only the workloads whose name contains TEXT")
    p.add_argument("--tag", default=None, help="machine tag for the result file names (default: the hostname)")
    args = p.parse_args(argv)
    try:
        counts = parse_threads(args.threads)
    except ValueError as e:
        p.error(f"--threads: {e}")
    if counts == [1] and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", args.tag or socket.gethostname() or platform.node() or "machine")

    print("xent configuration")
    config = xent.show_config()
    impls, skipped = [], {}
    for impl in IMPLS:
        why = impl.unavailable()
        if why:
            skipped[impl.name] = why
            print(f"note: skipping {impl.name}: {why}")
        else:
            impls.append(impl)

    load = common.cpu_load()
    load_warning = None
    if load is None:
        print("note: cannot read /proc/stat; not checking for other processes loading the CPU")
    else:
        print(f"CPU load before the run: {load['busy_cpus']} of {load['cpus']} CPUs busy, {load['steal_cpus']} stolen")
        if load["busy_cpus"] > 0.25 or load["steal_cpus"] > 0.25:
            load_warning = (
                f"other processes kept {load['busy_cpus']} CPUs busy ({load['steal_cpus']} stolen by the "
                "hypervisor) just before the run: timings may be slow and noisy"
            )
            print(f"WARNING: {load_warning}", file=sys.stderr)

    versions = {"python": platform.python_version()}
    for impl in impls:
        versions.update(impl.versions())
    meta = {
        "tag": tag,
        "hostname": socket.gethostname(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": common.cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "threads": counts,
        "quick": args.quick,
        "seed": common.SEED,
        "xent_config": config,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "versions": versions,
        "cpu_load_before": load,
        "load_warning": load_warning,
        "skipped": skipped,
    }

    plan = [("fixed", wl) for wl in common.workloads(args.quick)]
    if not args.no_sweep:
        plan += [("sweep", wl) for wl in common.sweep_workloads(args.quick)]
    rows = []
    for th in counts:
        print(f"\ntiming with {th} thread(s){' (quick)' if args.quick else ''}")
        impls_th = []
        for impl in impls:
            why = impl.skip_at(th)
            if why:
                skipped[f"{impl.name} at {th} thread(s)"] = why
                print(f"note: skipping {impl.name} at {th} thread(s): {why}")
            else:
                impls_th.append(impl)
        for group, wl in plan:
            if args.only and args.only not in wl.name:
                continue
            rows += run_workload(wl, impls_th, th, args.quick, group)

    md = report.markdown(meta, rows, skipped)
    print("\n" + md)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = tag + ("-quick" if args.quick else "")
    json_path, md_path, png_path = (RESULTS_DIR / f"{stem}{s}" for s in (".json", ".md", "-sweep.png"))
    common.write_atomic(json_path, json.dumps({"meta": meta, "results": [r.__dict__ for r in rows]}, indent=1) + "\n")
    common.write_atomic(md_path, md)
    why = report.plot(rows, meta, png_path)
    print(f"saved {json_path}, {md_path}" + (f" and {png_path}" if why is None else f" (no plot: {why})"))
    return 1 if any(r.check and not r.check["agrees"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
