"""Workloads, timing and machine state for the benchmarks (see README.md)."""
from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 2024
HALF = ("float16", "bfloat16")  # half storage: xent computes in float32 (see half.py)


def np_dtype(name: str) -> np.dtype:
    """The NumPy dtype of a workload's dtype name; bfloat16 is ml_dtypes' (ImportError if missing)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def have_bfloat16() -> bool:
    try:
        np_dtype("bfloat16")
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Workload:
    """A loss (+ gradient unless ``grad`` is False) on random logits.

    ``kind`` is "softmax" (rows x classes, integer labels) or "sigmoid" (elementwise, 0/1
    targets); ``dtype`` the logits' dtype."""

    kind: str
    shape: tuple
    dtype: str = "float32"
    grad: bool = True

    @property
    def name(self) -> str:
        if self.kind == "softmax":
            s = f"softmax {self.shape[0]}x{self.shape[1]}"
        else:
            n = self.shape[0]
            s = f"sigmoid {n // 1_000_000}M" if n % 1_000_000 == 0 else f"sigmoid {n}"
        if self.dtype != "float32":
            s += " " + {"float64": "f64", "float16": "f16", "bfloat16": "bf16"}.get(self.dtype, self.dtype)
        return s if self.grad else s + " fwd"

    @property
    def n_terms(self) -> int:
        """The number of averaged losses (rows for softmax, elements for sigmoid)."""
        return self.shape[0]

    @property
    def n_classes(self) -> int:
        return self.shape[1] if self.kind == "softmax" else 1

    @property
    def nbytes(self) -> int:
        """Bytes of the logits: what every implementation reads at least once."""
        return math.prod(self.shape) * np_dtype(self.dtype).itemsize

    def make(self, seed: int = SEED) -> dict:
        rng = np.random.default_rng(seed)
        dt = np_dtype(self.dtype)
        if self.kind == "softmax":
            logits = (3 * rng.standard_normal(self.shape, dtype=np.float32)).astype(dt)
            return {"logits": logits, "labels": rng.integers(0, self.shape[1], size=self.shape[0])}
        logits = (4 * rng.standard_normal(self.shape, dtype=np.float32)).astype(dt)
        return {"logits": logits, "targets": (rng.random(self.shape) < 0.1).astype(dt)}


def workloads(quick: bool) -> list[Workload]:
    """The fixed workloads of the issue's table, plus float64, half (float16, and bfloat16
    when ml_dtypes is installed) and forward-only variants."""
    big = (256, 50304) if quick else (2048, 50304)  # an LM-head sized vocabulary
    halves = [h for h in HALF if h != "bfloat16" or have_bfloat16()]
    return [
        Workload("softmax", (64, 10)),
        Workload("softmax", (4096, 1000)),
        Workload("softmax", (4096, 1000), dtype="float64"),
        *(Workload("softmax", (4096, 1000), dtype=h) for h in halves),
        Workload("softmax", big),
        Workload("softmax", big, dtype="float64"),
        *(Workload("softmax", big, dtype=h) for h in halves),
        Workload("softmax", big, grad=False),
        Workload("sigmoid", (1_000_000,) if quick else (10_000_000,)),
        # operands that fit this machine's L3 (24 MB with the gradient): the loss's compute,
        # not the memory's bandwidth, bounds it, where the thread count's speed-up is measured
        *(() if quick else (Workload("sigmoid", (2_000_000,)),)),
    ]


SWEEP_C = (2, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)


def sweep_workloads(quick: bool) -> list[Workload]:
    """Softmax cross-entropy + gradient at a fixed total size (64 MB of float32 logits, 4 MB
    with --quick) over a range of class counts: rows = size / C."""
    total = 2**20 if quick else 2**24
    return [Workload("softmax", (max(1, total // c), c)) for c in SWEEP_C]


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


def write_atomic(path: Path, data: str | bytes):
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data)
    tmp.replace(path)


def optional_torch(threads: int, note: bool = True):
    """PyTorch with ``threads`` intra-op threads, or None if it is not installed (an optional
    peer: the scripts then print ``note`` and leave its column out)."""
    try:
        import torch
    except ImportError:
        if note:
            print("torch not installed: no PyTorch column")
        return None
    torch.set_num_threads(threads)
    return torch
