"""Markdown tables and the throughput plot of a benchmark run."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Row:
    group: str  # "fixed" (the workloads) or "sweep" (C sweep)
    workload: str
    impl: str
    threads: int
    status: str  # "ok" or "failed" (unavailable implementations are in meta["skipped"])
    n_classes: int = 0
    note: str = ""
    ms: float | None = None
    min_ms: float | None = None
    samples: int = 0
    number: int = 0
    gbps: float | None = None  # logits bytes / median time
    peer_over_xent: float | None = None
    over_limit: float | None = None  # time over the copy (loss + grad) or read (forward) limit
    check: dict = field(default_factory=dict)


def _fmt(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}"


def _gb(v):
    return "" if v is None else f"{v:.3g}"


def _fmt_ms(v):
    if v is None:
        return ""
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _header(meta: dict) -> list[str]:
    lines = [
        f"# xent benchmark: {meta['tag']}",
        "",
        f"- {meta['date']}, {meta['cpu']}, {meta['cpus']} CPUs, thread counts {meta['threads']}, "
        f"xent ISA {meta['xent_config']['isa']}{', quick' if meta['quick'] else ''}",
        "- " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
    ]
    if meta.get("load_warning"):
        lines.append(f"- **warning**: {meta['load_warning']}")
    return lines


def _fixed_table(rows: list[Row], threads: int) -> list[str]:
    lines = [
        f"## {threads} thread{'s' if threads > 1 else ''}",
        "",
        "| workload | implementation | ms / call | peer / xent | × limit | GB/s | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    last = None
    for r in rows:
        if r.group != "fixed" or r.threads != threads:
            continue
        wl = r.workload if r.workload != last else ""
        last = r.workload
        lines.append(
            f"| {wl} | {r.impl} | {_fmt_ms(r.ms)} | {_fmt(r.peer_over_xent)} | {_fmt(r.over_limit)} "
            f"| {_gb(r.gbps)} | {r.note} |"
        )
    return lines


def _speedups(rows: list[Row], counts: list[int]) -> list[str]:
    if len(counts) < 2:
        return []
    lo, hi = min(counts), max(counts)
    lines = [""]
    # "xent, grad_out=": the same calls without the page faults of a new gradient, which
    # the kernel takes on its threads and which do not scale with them
    for impl in ("xent", "xent, grad_out="):
        t = {(r.workload, r.threads): r.ms for r in rows if r.impl == impl and r.group == "fixed" and r.ms}
        pairs = [f"{wl} {t[(wl, lo)] / t[(wl, hi)]:.2f}x" for (wl, th) in t if th == lo and (wl, hi) in t]
        if pairs:
            lines.append(f"{impl}, {hi} threads over {lo}: " + ", ".join(pairs) + ".")
    return lines if len(lines) > 1 else []


def _sweep_table(rows: list[Row], threads: int) -> list[str]:
    sweep = [r for r in rows if r.group == "sweep" and r.threads == threads]
    if not sweep:
        return []
    impls = list(dict.fromkeys(r.impl for r in sweep))
    cs = sorted({r.n_classes for r in sweep})
    by = {(r.n_classes, r.impl): r for r in sweep}
    lines = [
        "",
        f"### Sweep over C, {threads} thread{'s' if threads > 1 else ''}: GB/s of logits "
        "(loss + gradient, same total size for every C)",
        "",
        "| C | rows | " + " | ".join(impls) + " |",
        "|---:|---:|" + "---:|" * len(impls),
    ]
    for c in cs:
        rows_c = next(r.workload for r in sweep if r.n_classes == c).split()[1].split("x")[0]
        cells = [_gb(by[(c, i)].gbps) if (c, i) in by else "" for i in impls]
        lines.append(f"| {c} | {rows_c} | " + " | ".join(cells) + " |")
    return lines


def markdown(meta: dict, rows: list[Row], skipped: dict) -> str:
    lines = [
        *_header(meta),
        "",
        "Loss + gradient with mean reduction unless the workload says `fwd` (loss only); float32 "
        "unless it says f64. ms: median per call. peer / xent > 1: xent is that much faster "
        "(for `xent avx2, grad_out=`, where the CPU runs AVX-512: how much faster the default "
        "AVX-512 kernel set is than the AVX2 one, both into `grad_out=`). "
        "× limit: time over one copy of the logits into a preallocated array (loss + gradient) "
        "or one read of them (`fwd`), the memory limits. GB/s: bytes of logits over time.",
        "",
    ]
    counts = sorted({r.threads for r in rows})
    for th in counts:
        lines += _fixed_table(rows, th) + _sweep_table(rows, th) + [""]
    lines += _speedups(rows, counts)
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + "."]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], meta: dict, path: Path) -> str | None:
    """PNG of GB/s against C for every implementation, one panel per thread count, the copy
    limit drawn as a dashed line. Returns a reason if it could not be drawn."""
    sweep = [r for r in rows if r.group == "sweep" and r.gbps]
    if not sweep:
        return "no sweep results"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib not installed ({e})"
    counts = sorted({r.threads for r in sweep})
    fig, axes = plt.subplots(1, len(counts), figsize=(6.5 * len(counts), 4.8), squeeze=False, sharey=True)
    for ax, th in zip(axes[0], counts):
        mine = [r for r in sweep if r.threads == th]
        for impl in dict.fromkeys(r.impl for r in mine):
            pts = sorted((r.n_classes, r.gbps) for r in mine if r.impl == impl)
            x, y = zip(*pts)
            if impl.startswith("copy (memory"):
                ax.plot(x, y, "k--", lw=1.5, label="copy (memory limit)")
            elif impl.startswith("copy to new"):
                ax.plot(x, y, ":", color="grey", lw=1.2, label=impl)
            else:
                ax.plot(x, y, "o-", lw=2.2 if impl == "xent" else 1.2, ms=3, label=impl)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("classes C (rows = total / C)")
        ax.set_title(f"softmax CE + gradient, float32, {th} thread{'s' if th > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("GB/s of logits (higher is better)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"xent vs peers on {meta['cpu']} ({meta['date']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
