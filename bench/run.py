"""Side-by-side benchmark of xent against the memory limit and its peers.

    python bench/run.py [--quick] [--threads N] [--tag NAME]

Every workload is a float32 loss *and* its gradient with mean reduction: softmax
cross-entropy with integer labels, and elementwise sigmoid cross-entropy with 0/1 targets.
Each implementation is timed on the same inputs (median over repeats after warm-up calls,
the repeat count adapted to the workload's size) and its loss and gradient are checked
against xent's before timing. Results go to ``bench/results/<tag>.json`` and ``<tag>.md``
(``<tag>-quick.*`` with ``--quick``). See bench/README.md.

Structure, to grow: a ``Workload`` makes inputs; an ``Impl`` subclass (registered in
``IMPLS``) turns a workload into a timed callable plus a converter of its output to
``(mean loss, gradient of the mean)``; ``measure`` times a callable; ``report_*`` render.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import xent

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEED = 2024


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    kind: str  # "softmax" (rows x classes, integer labels) or "sigmoid" (elementwise, 0/1 targets)
    shape: tuple

    @property
    def name(self) -> str:
        if self.kind == "softmax":
            return f"softmax {self.shape[0]}x{self.shape[1]}"
        n = self.shape[0]
        return f"sigmoid {n // 1_000_000}M" if n % 1_000_000 == 0 else f"sigmoid {n}"

    @property
    def n_terms(self) -> int:
        """The number of averaged losses (rows for softmax, elements for sigmoid)."""
        return self.shape[0]

    def make(self, seed: int = SEED) -> dict:
        rng = np.random.default_rng(seed)
        if self.kind == "softmax":
            logits = 3 * rng.standard_normal(self.shape, dtype=np.float32)
            return {"logits": logits, "labels": rng.integers(0, self.shape[1], size=self.shape[0])}
        logits = 4 * rng.standard_normal(self.shape, dtype=np.float32)
        return {"logits": logits, "targets": (rng.random(self.shape) < 0.1).astype(np.float32)}


def workloads(quick: bool) -> list[Workload]:
    return [
        Workload("softmax", (64, 10)),
        Workload("softmax", (4096, 1000)),
        Workload("softmax", (256, 50304) if quick else (2048, 50304)),  # LM-head sized vocabulary
        Workload("sigmoid", (1_000_000,) if quick else (10_000_000,)),
    ]


# --------------------------------------------------------------------------- implementations


class Impl:
    """One implementation. ``setup`` returns a callable computing loss + gradient on the
    workload's inputs (the timed part); ``result`` turns its return value into
    ``(mean loss as float, gradient of the mean loss as a NumPy array)``, or None if there
    is nothing to check. ``unavailable()`` gives a reason to skip, or None."""

    name = ""
    is_peer = True  # peers get a "peer / xent" ratio

    def unavailable(self) -> str | None:
        return None

    def versions(self) -> dict:
        return {}

    def setup(self, wl: Workload, data: dict, threads: int):
        raise NotImplementedError

    def result(self, out, wl: Workload):
        return out


class Copy(Impl):
    """The memory limit: one pass reading the logits and writing an array of their size
    (xent reads the logits and writes the gradient). Single-threaded."""

    name = "copy (memory limit)"
    is_peer = False

    def setup(self, wl, data, threads):
        src = data["logits"]
        dst = np.zeros_like(src)  # preallocated and touched: no page faults in the timing
        return lambda: np.copyto(dst, src)

    def result(self, out, wl):
        return None


class NewCopy(Copy):
    """``np.copy`` of the logits: the copy plus allocating (and page-faulting in) a new
    array, as every implementation here does for its gradient. On large inputs this is
    the realistic floor for an API that returns a new gradient."""

    name = "copy to new array"

    def setup(self, wl, data, threads):
        src = data["logits"]
        return lambda: np.copy(src)


class Xent(Impl):
    name = "xent"
    is_peer = False

    def versions(self):
        return {"xent": xent.show_config(print_out=False)["version"]}

    def setup(self, wl, data, threads):
        z = data["logits"]
        if wl.kind == "softmax":
            y = data["labels"]
            return lambda: xent.softmax_cross_entropy(z, y, return_grad=True, n_threads=threads)
        t = data["targets"]
        return lambda: xent.sigmoid_cross_entropy(z, t, return_grad=True, n_threads=threads)


class NumPy(Impl):
    """A careful float32 implementation: max-subtraction, exp, sum, log; mean in float64.
    NumPy's ufuncs are single-threaded whatever --threads says."""

    name = "numpy"

    def versions(self):
        return {"numpy": np.__version__}

    @staticmethod
    def softmax(z, y):
        n = z.shape[0]
        rows = np.arange(n)
        g = z - z.max(axis=1, keepdims=True)
        picked = g[rows, y]
        np.exp(g, out=g)
        s = g.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) - picked, dtype=np.float64)
        g *= (1.0 / n) / s
        g[rows, y] -= 1.0 / n
        return float(loss), g

    @staticmethod
    def sigmoid(z, t):
        n = z.size
        e = np.exp(-np.abs(z))
        loss = np.mean(np.maximum(z, 0) - z * t + np.log1p(e), dtype=np.float64)
        g = np.where(z >= 0, 1.0, e).astype(z.dtype, copy=False)
        g /= 1 + e
        g -= t
        g *= 1.0 / n
        return float(loss), g

    def setup(self, wl, data, threads):
        z = data["logits"]
        if wl.kind == "softmax":
            y = data["labels"]
            return lambda: self.softmax(z, y)
        t = data["targets"]
        return lambda: self.sigmoid(z, t)


class Torch(Impl):
    """F.cross_entropy / F.binary_cross_entropy_with_logits, forward + backward
    (torch.autograd.grad, so every call returns a fresh gradient)."""

    name = "pytorch"

    def unavailable(self):
        try:
            import torch  # noqa: F401
        except ImportError as e:
            return f"not installed ({e})"
        return None

    def versions(self):
        import torch

        return {"torch": torch.__version__}

    def setup(self, wl, data, threads):
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        z = torch.from_numpy(data["logits"]).requires_grad_()
        if wl.kind == "softmax":
            y = torch.from_numpy(data["labels"])
            loss_fn = F.cross_entropy
        else:
            y = torch.from_numpy(data["targets"])
            loss_fn = F.binary_cross_entropy_with_logits

        def run():
            loss = loss_fn(z, y)
            (g,) = torch.autograd.grad(loss, z)
            return loss, g

        return run

    def result(self, out, wl):
        loss, g = out
        return float(loss.item()), g.numpy()


class SkLearn(Impl):
    """sklearn._loss.loss.HalfMultinomialLoss / HalfBinomialLoss ``loss_gradient`` plus the
    mean of the per-sample losses. It needs float64 input, converted before timing (so it
    moves twice the bytes); its gradient is per sample (not divided by the batch size)."""

    name = "scikit-learn (f64)"

    def unavailable(self):
        try:
            from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss  # noqa: F401
        except ImportError as e:
            return f"not installed or API changed ({e})"
        return None

    def versions(self):
        import sklearn

        return {"sklearn": sklearn.__version__}

    def setup(self, wl, data, threads):
        from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss

        z = data["logits"].astype(np.float64)
        if wl.kind == "softmax":
            loss_obj = HalfMultinomialLoss(n_classes=wl.shape[1])
            y = data["labels"].astype(np.float64)
        else:
            loss_obj = HalfBinomialLoss()
            y = data["targets"].astype(np.float64)

        def run():
            loss, g = loss_obj.loss_gradient(y, z, n_threads=threads)
            return float(loss.mean()), g

        return run

    def result(self, out, wl):
        loss, g = out
        return loss, g / wl.n_terms


class Jax(Impl):
    """optax.softmax_cross_entropy_with_integer_labels / sigmoid_binary_cross_entropy,
    mean, under jax.jit(jax.value_and_grad(...)) on the CPU. XLA picks its own thread
    count; --threads 1 sets XLA_FLAGS for a single thread (only if jax isn't imported yet)."""

    name = "jax+optax"

    def unavailable(self):
        try:
            import jax  # noqa: F401
            import optax  # noqa: F401
        except ImportError as e:
            return f"not installed ({e})"
        return None

    def versions(self):
        import jax
        import optax

        return {"jax": jax.__version__, "optax": optax.__version__}

    def setup(self, wl, data, threads):
        import jax
        import optax

        if wl.kind == "softmax":
            def f(z, y):
                return optax.softmax_cross_entropy_with_integer_labels(z, y).mean()

            y = jax.device_put(data["labels"].astype(np.int32))
        else:
            def f(z, t):
                return optax.sigmoid_binary_cross_entropy(z, t).mean()

            y = jax.device_put(data["targets"])
        vg = jax.jit(jax.value_and_grad(f))
        z = jax.device_put(data["logits"])

        def run():
            loss, g = vg(z, y)
            return loss, g.block_until_ready()

        return run

    def result(self, out, wl):
        loss, g = out
        return float(loss), np.asarray(g)


IMPLS: list[Impl] = [Copy(), NewCopy(), Xent(), NumPy(), Torch(), SkLearn(), Jax()]


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    median_s: float
    min_s: float
    samples: int  # timed samples; the median is over these
    number: int  # calls per sample (> 1 for calls too short to time one by one)


def measure(fn, *, budget_s: float, min_samples: int, max_samples: int = 2000, min_sample_s: float = 2e-3) -> Timing:
    """Two warm-up calls (compilation, page faults, caches), the second timed as an
    estimate; then enough samples to fill ``budget_s`` (at least ``min_samples``)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        fn()
        t0 = time.perf_counter()
        fn()
        est = max(time.perf_counter() - t0, 1e-7)
        number = max(1, math.ceil(min_sample_s / est)) if est < min_sample_s else 1
        samples = int(min(max(budget_s / (est * number), min_samples), max_samples))
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(statistics.median(times), min(times), samples, number)


# --------------------------------------------------------------------------- machine state


def _cpu_times():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    if fields[0] != "cpu":
        raise ValueError("unexpected /proc/stat format")
    return [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal


def cpu_load(interval: float = 0.5) -> dict | None:
    """CPUs kept busy by other processes (and stolen by the hypervisor) while this one
    sleeps for ``interval`` seconds, from /proc/stat; None if that isn't available."""
    try:
        a = _cpu_times()
        time.sleep(interval)
        b = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    d = [y - x for x, y in zip(a, b)]
    total = sum(d)
    if total <= 0:
        return None
    n_cpu = os.cpu_count() or 1
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    return {"cpus": n_cpu, "busy_cpus": round(busy / total * n_cpu, 2), "steal_cpus": round(d[7] / total * n_cpu, 2)}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- running


@dataclass
class Row:
    workload: str
    impl: str
    status: str  # "ok" or "failed" (unavailable implementations are in meta["skipped"])
    note: str = ""
    ms: float | None = None
    min_ms: float | None = None
    samples: int = 0
    number: int = 0
    peer_over_xent: float | None = None
    over_copy: float | None = None
    check: dict = field(default_factory=dict)


def check_against(ref, got, wl: Workload) -> dict:
    """Loss difference, and gradient difference in units of the largest possible entry (1/N)."""
    d_loss = abs(got[0] - ref[0])
    d_grad = float(np.max(np.abs(np.asarray(got[1], dtype=np.float64) - ref[1]))) * wl.n_terms
    ok = d_loss <= 1e-4 * max(1.0, abs(ref[0])) and d_grad <= 1e-4
    return {"loss_abs_diff": d_loss, "grad_abs_diff_times_n": d_grad, "agrees": ok}


def run_workload(wl: Workload, impls, threads: int, quick: bool) -> list[Row]:
    data = wl.make()
    budget, min_samples = (0.25, 3) if quick else (1.5, 5)
    rows, ref = [], None
    for impl in impls:
        row = Row(wl.name, impl.name, "ok")
        try:
            fn = impl.setup(wl, data, threads)
            out = impl.result(fn(), wl)
            if isinstance(impl, Xent):
                ref = (out[0], np.asarray(out[1], dtype=np.float64))
            elif out is not None and ref is not None:
                row.check = check_against(ref, out, wl)
                if not row.check["agrees"]:
                    row.note = "DISAGREES with xent"
                    print(f"  warning: {impl.name} disagrees with xent on {wl.name}: {row.check}", file=sys.stderr)
            del out
            t = measure(fn, budget_s=budget, min_samples=min_samples)
        except Exception as e:  # a peer failing must not stop the run
            row.status, row.note = "failed", f"{type(e).__name__}: {e}"
            print(f"  {impl.name} failed on {wl.name}: {row.note}", file=sys.stderr)
            rows.append(row)
            continue
        finally:
            fn = None
            gc.collect()
        row.ms, row.min_ms, row.samples, row.number = 1e3 * t.median_s, 1e3 * t.min_s, t.samples, t.number
        rows.append(row)
        print(f"  {wl.name:<20} {impl.name:<20} {row.ms:10.4f} ms  ({t.samples} x {t.number} calls)", flush=True)
    by = {r.impl: r.ms for r in rows if r.ms is not None}
    x, c = by.get(Xent.name), by.get(Copy.name)
    for impl, r in zip(impls, rows):
        if r.ms is None:
            continue
        if c:
            r.over_copy = r.ms / c
        if x and impl.is_peer:
            r.peer_over_xent = r.ms / x
    return rows


# --------------------------------------------------------------------------- reporting


def _fmt(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}"


def _fmt_ms(v):
    if v is None:
        return ""
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def report_markdown(meta: dict, rows: list[Row], skipped: dict) -> str:
    lines = [
        f"# xent benchmark: {meta['tag']}",
        "",
        f"- {meta['date']}, {meta['cpu']}, {meta['cpus']} CPUs, {meta['threads']} thread(s), "
        f"xent ISA {meta['xent_config']['isa']}{', quick' if meta['quick'] else ''}",
        "- " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
    ]
    if meta.get("load_warning"):
        lines.append(f"- **warning**: {meta['load_warning']}")
    lines += [
        "",
        "float32 loss + gradient, mean reduction. ms: median per call. "
        "peer / xent > 1: xent is faster. × copy: time over one copy of the logits (the memory limit).",
        "",
        "| workload | implementation | ms / call | peer / xent | × copy | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    last = None
    for r in rows:
        wl = r.workload if r.workload != last else ""
        last = r.workload
        lines.append(
            f"| {wl} | {r.impl} | {_fmt_ms(r.ms)} | {_fmt(r.peer_over_xent)} | {_fmt(r.over_copy)} | {r.note} |"
        )
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + "."]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smaller workloads and fewer repeats (about a minute or less)")
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="threads for xent, PyTorch and scikit-learn (default: all usable CPUs)",
    )
    p.add_argument("--tag", default=None, help="machine tag for the result file names (default: the hostname)")
    p.add_argument(
        "--only",
        metavar="TEXT",
        default=None,
        help='run only the workloads whose name contains TEXT, e.g. "softmax" or "50304"',
    )
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.threads == 1 and "XLA_FLAGS" not in os.environ:
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

    load = cpu_load()
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
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "threads": args.threads,
        "quick": args.quick,
        "seed": SEED,
        "xent_config": config,
        "versions": versions,
        "cpu_load_before": load,
        "load_warning": load_warning,
        "skipped": skipped,
    }

    print(f"\ntiming with {args.threads} thread(s){' (quick)' if args.quick else ''}")
    rows = []
    for wl in workloads(args.quick):
        if args.only and args.only not in wl.name:
            continue
        rows += run_workload(wl, impls, args.threads, args.quick)

    md = report_markdown(meta, rows, skipped)
    print("\n" + md)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = tag + ("-quick" if args.quick else "")
    json_path, md_path = RESULTS_DIR / f"{stem}.json", RESULTS_DIR / f"{stem}.md"
    _write(json_path, json.dumps({"meta": meta, "results": [r.__dict__ for r in rows]}, indent=1) + "\n")
    _write(md_path, md)
    print(f"saved {json_path} and {md_path}")
    return 1 if any(r.check and not r.check["agrees"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
