"""The ``xent`` command line (also ``python -m xent``). One subcommand so far:

``xent eval PREDICTIONS [LABELS]`` streams a model's logits (or probabilities) and the labels
through :class:`xent.MetricsAccumulator` chunk by chunk and prints cross-entropy, perplexity,
accuracy, top-k accuracy, expected calibration error and per-class loss; ``--json`` for
programs, ``--plot FILE.png`` for a figure. ``xent eval --demo`` runs on a built-in example.
Exit status: 0 on success, 2 for a bad file or argument (one line on stderr), 1 for an
unexpected internal error.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from ._eval_io import InputError, Source, open_source, rechunk
from ._eval_metrics import MetricsAccumulator, default_chunk_rows

PROG = "xent eval"
DESCRIPTION = (
    "Streams a model's logits (or probabilities) and the labels chunk by chunk and prints cross-entropy, "
    "perplexity, accuracy, top-k accuracy, expected calibration error and per-class loss. Exit status: 0 on "
    "success, 2 for a bad file or argument (one line on stderr). Details: docs/eval.md."
)


class ArraySource(Source):
    """Rows of an array already in memory (the demo)."""

    def __init__(self, a: np.ndarray, name: str):
        self._a, self.name, self.n_rows, self.row_shape, self.dtype = a, name, len(a), a.shape[1:], a.dtype

    def blocks(self, rows):
        return (self._a[i : i + rows] for i in range(0, self.n_rows, rows))


def demo_data(n_rows: int = 4000, n_classes: int = 10, seed: int = 7):
    """A deterministic, slightly over-confident 10-class "model": logits are a noisy score of
    the true class, scaled up by 2.2 (so its confidence exceeds its accuracy)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_rows)
    skill = rng.uniform(0.5, 3.0, n_classes)  # some classes are easier than others
    logits = rng.standard_normal((n_rows, n_classes))
    logits[np.arange(n_rows), labels] += skill[labels]
    return (2.2 * logits).astype(np.float32), labels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xent", description="xent command line tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("eval", help="metrics of a model's predictions against labels, streamed from files",
                       description=DESCRIPTION)
    p.add_argument("predictions", nargs="?", help=".npy, .npz, .parquet or .arrow/.feather file of (N, C) logits "
                   "or probabilities (Parquet/Arrow: a column holding one list of C values per row)")
    p.add_argument("labels", nargs="?", help="file of (N,) integer labels or (N, C) one-hot rows; "
                   "default: the --labels-key array of the predictions file")
    p.add_argument("--demo", action="store_true", help="run on a built-in synthetic example")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--from-logits", dest="from_logits", action="store_true", default=True,
                      help="predictions are logits (default)")
    kind.add_argument("--from-probs", dest="from_logits", action="store_false",
                      help="predictions are probabilities (renormalised per row, clipped to [1e-7, 1 - 1e-7])")
    p.add_argument("--logits-key", default=None, metavar="KEY",
                   help="array (.npz) or column (Parquet/Arrow) of the predictions; default 'logits' "
                   "('probs' with --from-probs)")
    p.add_argument("--labels-key", default="labels", metavar="KEY",
                   help="array or column of the labels (default labels)")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="k of top-k accuracy (default 5, at most C)")
    p.add_argument("--bins", type=int, default=15, metavar="M", help="confidence bins of the ECE (default 15)")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N", help="rows per chunk (default: ~64 MB)")
    p.add_argument("--threads", type=int, default=None, metavar="T", help="threads of the kernels (default: all)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="save a reliability diagram and per-class loss bars")
    p.add_argument("--classes", type=int, default=10, metavar="N",
                   help="per-class rows in the table: the N with the highest loss (default 10; --json has all)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def _check_args(a) -> None:
    for name in ("top_k", "bins", "chunk_rows", "threads"):
        v = getattr(a, name)
        if v is not None and v < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {v}")


def _open(a):
    if a.demo:
        z, y = demo_data()
        return ArraySource(z, "demo logits"), ArraySource(y, "demo labels")
    if not a.predictions:
        raise InputError("give a predictions file (and a labels file), or --demo (see xent eval --help)")
    key = a.logits_key or ("logits" if a.from_logits else "probs")
    if not a.labels and a.predictions.lower().endswith(".npy"):
        raise InputError(f"{a.predictions}: a .npy file holds one array: give the labels file too")
    preds = open_source(a.predictions, key)
    labels = open_source(a.labels or a.predictions, a.labels_key)
    if preds.dtype.kind != "f" or len(preds.row_shape) != 1 or preds.row_shape[0] < 1:
        raise InputError(f"{preds.name}: holds {preds.dtype} of shape {(preds.n_rows, *preds.row_shape)}; "
                         "expected floating-point predictions of shape (rows, classes)")
    n, c = preds.n_rows, preds.row_shape[0]
    if labels.n_rows != n:
        raise InputError(f"{labels.name}: has {labels.n_rows} rows but {preds.name} has {n}")
    if labels.row_shape == ():
        if labels.dtype.kind not in "iu":
            raise InputError(f"{labels.name}: holds {labels.dtype}; expected integer class indices (or one-hot rows)")
    elif labels.row_shape != (c,) or labels.dtype.kind not in "fiub":
        raise InputError(f"{labels.name}: has rows of shape {labels.row_shape} and dtype {labels.dtype}; "
                         f"expected integer labels ({n},) or one-hot rows ({n}, {c})")
    if n == 0:
        raise InputError(f"{preds.name}: has no rows")
    return preds, labels


def _progress(total: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="rows", unit_scale=True, file=sys.stderr, desc="xent eval")


def run(a) -> dict:
    _check_args(a)
    preds, labels = _open(a)
    c = preds.row_shape[0]
    rows = a.chunk_rows or default_chunk_rows(c, preds.dtype.itemsize)
    acc = MetricsAccumulator(c, from_logits=a.from_logits, top_k=a.top_k, n_bins=a.bins, n_threads=a.threads)
    bar = _progress(preds.n_rows, a.quiet)
    try:
        for p, y in zip(rechunk(preds.blocks(rows), rows), rechunk(labels.blocks(rows), rows)):
            try:
                acc.update(p, y)
            except ValueError as e:
                msg = str(e)
                raise InputError(f"{labels.name if msg.startswith('labels') else preds.name}: {msg}") from None
            if bar is not None:
                bar.update(len(y))
    finally:
        if bar is not None:
            bar.close()
    res = acc.result()
    res["predictions"], res["labels"] = preds.name, labels.name
    return res


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (np.ndarray, list, tuple)):
        return [_jsonable(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    return x.item() if isinstance(x, np.generic) else x


def format_table(r: dict, n_classes_shown: int = 10) -> str:
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    lines = [
        f"{r['predictions']} vs {r['labels']}: {r['n_rows']:,} rows, {r['n_classes']:,} classes, from {r['input']}",
        "",
        f"  {'cross-entropy (mean)':<24}{r['cross_entropy']:.6f} nats",
        f"  {'perplexity':<24}{r['perplexity']:.4f}",
        f"  {'accuracy':<24}{pct(r['accuracy'])}",
        f"  {'top-' + str(r['top_k']) + ' accuracy':<24}{pct(r['top_k_accuracy'])}",
        f"  {'ECE (' + str(len(r['calibration']['count'])) + ' bins)':<24}{pct(r['ece'])}",
        "",
        f"  {'confidence bin':<14}{'rows':>9}  {'confidence':>10}  {'accuracy':>8}",
    ]
    cal = r["calibration"]
    e = cal["bin_edges"]
    for i, cnt in enumerate(cal["count"]):
        if cnt:
            lines.append(f"  ({e[i]:.2f}, {e[i + 1]:.2f}]  {cnt:>9,}  {pct(cal['confidence'][i]):>10}  "
                         f"{pct(cal['accuracy'][i]):>8}")
    loss, sup = r["per_class"]["loss"], r["per_class"]["support"]
    seen = np.flatnonzero(sup > 0)
    order = seen[np.argsort(-loss[seen], kind="stable")][:n_classes_shown]
    head = "per class"
    if len(order) < len(sup):
        head = f"per class: the {len(order)} of {len(sup):,} with the highest loss"
    lines += ["", f"  {head}", "     class   support   mean loss"]
    lines += [f"  {c:>8}  {sup[c]:>8,}   {loss[c]:>9.4f}" for c in order]
    if len(seen) < len(sup):
        lines.append(f"  ({len(sup) - len(seen):,} classes have no rows)")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Runs the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command != "eval":
        parser.print_help(sys.stderr)
        return 2
    try:
        if a.plot:  # before reading gigabytes, not after
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                raise InputError("--plot needs matplotlib (pip install 'xent[eval]')") from None
        r = run(a)
        if a.plot:
            from ._eval_plot import plot_report

            plot_report(r, a.plot, f"{r['predictions']}: {r['n_rows']:,} rows, {r['n_classes']:,} classes")
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("XENT_DEBUG"):
            raise
        print(f"{PROG}: internal error ({type(e).__name__}: {e}); set XENT_DEBUG=1 for a traceback",
              file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(_jsonable(r), indent=2))
    else:
        print(format_table(r, a.classes))
        if a.plot:
            print(f"\nplot saved to {a.plot}")
    return 0
