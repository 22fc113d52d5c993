"""``xent eval --plot FILE.png``: a reliability diagram and per-class loss bars (matplotlib)."""
from __future__ import annotations

import numpy as np

MAX_CLASS_BARS = 60


def plot_report(result: dict, path: str, title: str = "") -> None:
    """Saves a two-panel figure of ``result`` (:meth:`MetricsAccumulator.result`) to ``path``.

    Left: accuracy per confidence bin against the diagonal (a perfectly calibrated model), the
    gap shaded, bin counts as a histogram below. Right: mean loss per class (all classes up to
    60, otherwise the 60 with the highest mean loss), with the overall mean as a line.
    Raises ImportError if matplotlib is missing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal, pc = result["calibration"], result["per_class"]
    edges = np.asarray(cal["bin_edges"], dtype=float)
    width = np.diff(edges)
    acc = np.nan_to_num(np.asarray(cal["accuracy"], dtype=float))
    conf = np.asarray(cal["confidence"], dtype=float)
    count = np.asarray(cal["count"], dtype=float)
    fig = plt.figure(figsize=(12, 5), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 1], width_ratios=[1, 1.3])
    ax = fig.add_subplot(grid[0, 0])
    ax.bar(edges[:-1], acc, width=width, align="edge", color="#4C72B0", edgecolor="white", label="accuracy")
    filled = ~np.isnan(conf)
    ax.bar(edges[:-1][filled], (conf - acc)[filled], bottom=acc[filled], width=width[filled], align="edge",
           color="#DD8452", alpha=0.45, edgecolor="#DD8452", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy",
           title=f"Reliability diagram (ECE {100 * result['ece']:.2f}%)")
    ax.legend(loc="upper left", fontsize=8)
    hist = fig.add_subplot(grid[1, 0], sharex=ax)
    hist.bar(edges[:-1], count, width=width, align="edge", color="grey", edgecolor="white")
    hist.set(xlabel="confidence (max probability)", ylabel="rows")

    loss = np.asarray(pc["loss"], dtype=float)
    classes = np.arange(len(loss))
    shown = classes[~np.isnan(loss)]
    note = ""
    if len(shown) > MAX_CLASS_BARS:
        shown = shown[np.argsort(-loss[shown], kind="stable")[:MAX_CLASS_BARS]]
        note = f" ({MAX_CLASS_BARS} highest of {len(loss)})"
    bx = fig.add_subplot(grid[:, 1])
    bx.bar(np.arange(len(shown)), loss[shown], color="#55A868")
    bx.axhline(result["cross_entropy"], color="k", lw=1, ls="--", label="mean over rows")
    bx.set_xticks(np.arange(len(shown)))
    bx.set_xticklabels([str(c) for c in shown], rotation=90 if len(shown) > 20 else 0, fontsize=7)
    bx.set(xlabel="class", ylabel="mean cross-entropy", title=f"Loss per class{note}")
    bx.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
