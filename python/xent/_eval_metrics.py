"""Classification metrics over batches of predictions, accumulated in float64: the engine of
``xent eval``, of :func:`xent.evaluate` and of ``xent.dask.evaluate``.

Per batch, everything O(N x C) runs in xent's C++ kernels (per-row losses, logsumexp) or in
single NumPy passes (argmax, comparisons); only O(N) and O(C) state is kept, so batches of any
count stream in bounded memory and two accumulators merge exactly (counts) or to float64
rounding (sums).
"""
from __future__ import annotations

import numpy as np

from ._softmax import logsumexp, softmax_cross_entropy
from ._validate import n_threads_arg

#: Probabilities are renormalised per row, then clipped to [PROB_EPS, 1 - PROB_EPS] before the
#: log (Keras's ``categorical_crossentropy(from_logits=False)`` convention, epsilon 1e-7).
PROB_EPS = 1e-7
CHUNK_BYTES = 64 << 20


def default_chunk_rows(n_classes: int, itemsize: int = 4) -> int:
    """Rows per chunk so that one chunk of predictions is about 64 MB."""
    return max(1, CHUNK_BYTES // max(1, n_classes * itemsize))


def prob_cross_entropy(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row ``-log(clip(p[y] / sum(p), eps, 1 - eps))`` in float64, ``eps = 1e-7``.

    Keras's convention for ``from_logits=False`` (renormalise, clip, log). PyTorch's ``NLLLoss``
    on ``log(p)`` neither renormalises nor clips (``p[y] = 0`` costs ``inf``); scikit-learn's
    ``log_loss`` renormalises and clips at the dtype's epsilon. ``p``: (N, C) >= 0, finite,
    rows with a positive sum (checked by the caller); ``y``: (N,) valid class indices.
    """
    s = p.sum(axis=1, dtype=np.float64)
    py = p[np.arange(len(y)), y].astype(np.float64)
    return -np.log(np.clip(py / s, PROB_EPS, 1.0 - PROB_EPS))


def _onehot_to_index(t: np.ndarray, offset: int) -> np.ndarray:
    nz = np.count_nonzero(t, axis=1)
    y = np.argmax(t, axis=1)
    bad = (nz != 1) | (t[np.arange(len(y)), y] != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"labels row {offset + i} is not one-hot (expected one 1 and zeros elsewhere)")
    return y


def _first_bad_entry(a: np.ndarray, rows: np.ndarray, bad_entry, offset: int, what: str):
    i = int(rows[0])
    j = int(np.flatnonzero(bad_entry(a[i]))[0])
    return ValueError(f"predictions[{offset + i}, {j}] = {a[i, j].item()!r}: {what}")


class MetricsAccumulator:
    """Streaming classification metrics: feed batches with :meth:`update`, read :meth:`result`.

    ``MetricsAccumulator(n_classes, *, from_logits=True, top_k=5, n_bins=15, n_threads=None)``

    ``update(predictions, labels)``: ``predictions`` (N, C) float32/float64 logits (or
    probabilities with ``from_logits=False``); ``labels`` (N,) integer class indices or (N, C)
    one-hot. Raises ValueError (naming the global row and column) on NaN, ``+inf`` logits,
    negative or non-finite probabilities, a row of probabilities summing to 0, labels out of
    ``[0, C)`` or rows that are not one-hot; TypeError on non-numeric input. ``merge(other)``
    adds another accumulator's batches (as if they came after this one's).

    Definitions (``p`` = softmax of the logits, or the probabilities renormalised per row):

    - ``cross_entropy``: mean over rows of ``logsumexp(z) - z[y]`` (exactly what
      ``xent.softmax_cross_entropy`` computes), or of :func:`prob_cross_entropy` for
      probabilities; ``perplexity = exp(cross_entropy)``.
    - ``accuracy``: fraction of rows with ``argmax(p) == y`` (the first maximum on ties, as
      NumPy's ``argmax``).
    - ``top_k_accuracy``: fraction of rows whose label ranks among the ``k = min(top_k, C)``
      largest, ranking by value, ties by class index (so ``k = 1`` equals ``accuracy``).
    - ``ece`` (expected calibration error, Guo et al. 2017): confidence ``max(p)``, split into
      ``n_bins`` equal-width bins ``(i/M, (i+1)/M]`` (0 falls in the first); ``ece = sum over
      bins of |bin| / N * |accuracy(bin) - mean confidence(bin)|`` (bins closed on the upper
      side as in Guo et al.'s code; the quantity torchmetrics' ``MulticlassCalibrationError(
      norm="l1")`` estimates, which may put a confidence lying exactly on an edge in the next bin).
    - ``per_class``: for each class, the number of rows with that label (``support``) and their
      mean loss (``loss``; NaN for a class with no rows).

    Sums are accumulated in float64. For float32 logits the total loss comes from the kernel's
    own float64 sum (``reduction="sum"``), so the mean equals the in-memory
    ``softmax_cross_entropy(logits, labels)`` to float64 rounding; per-class sums add up the
    per-row losses as returned by ``reduction="none"`` (in the input's precision).
    """

    def __init__(self, n_classes: int, *, from_logits: bool = True, top_k: int = 5, n_bins: int = 15,
                 n_threads=None):
        if int(n_classes) < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if int(top_k) < 1 or int(n_bins) < 1:
            raise ValueError(f"top_k and n_bins must be >= 1, got {top_k} and {n_bins}")
        self.n_classes = C = int(n_classes)
        self.from_logits = bool(from_logits)
        self.top_k = min(int(top_k), C)
        self.n_bins = int(n_bins)
        self.n_threads = n_threads_arg(n_threads)
        self.n_rows = 0
        self.row_offset = 0  # added to row numbers in error messages (a block's start, in xent.dask)
        self.loss_sum = 0.0
        self.n_correct = 0
        self.n_top_k = 0
        self.bin_count = np.zeros(self.n_bins, np.int64)
        self.bin_correct = np.zeros(self.n_bins, np.int64)
        self.bin_confidence = np.zeros(self.n_bins, np.float64)
        self.class_loss = np.zeros(C, np.float64)
        self.class_count = np.zeros(C, np.int64)
        self._inner_edges = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]

    # -- checks ---------------------------------------------------------------------------
    def _labels(self, labels, n: int) -> np.ndarray:
        y = np.asarray(labels)
        C, off = self.n_classes, self.row_offset + self.n_rows
        if y.ndim == 2 and y.shape == (n, C) and y.dtype.kind in "fiub":
            return _onehot_to_index(y, off)
        if y.dtype.kind not in "iu":
            raise TypeError(f"labels must be integer class indices or one-hot rows, got dtype {y.dtype}")
        if y.shape != (n,):
            raise ValueError(
                f"labels have shape {y.shape} but predictions have {n} rows: expected ({n},) or ({n}, {C})"
            )
        if n:
            bad = (y < 0) | (y >= C)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"labels[{off + i}] = {int(y[i])} is out of range [0, {C})")
        return y.astype(np.int64, copy=False)

    def _predictions(self, predictions) -> np.ndarray:
        a = np.asarray(predictions)
        if a.dtype.kind != "f":
            if a.dtype.kind not in "iu":
                raise TypeError(f"predictions must be real numbers, got dtype {a.dtype}")
            a = a.astype(np.float64)
        elif a.dtype.itemsize < 4:
            a = a.astype(np.float32)
        if a.ndim != 2 or a.shape[1] != self.n_classes:
            raise ValueError(f"predictions have shape {a.shape}, expected (rows, {self.n_classes})")
        return a

    # -- per-batch work -------------------------------------------------------------------
    def _logit_stats(self, z, y):
        nt, off = self.n_threads, self.row_offset + self.n_rows
        losses = softmax_cross_entropy(z, y, reduction="none", n_threads=nt)
        bad = np.flatnonzero(np.isnan(losses))  # NaN or +inf logits give NaN in their row only
        if bad.size:
            raise _first_bad_entry(z, bad, lambda r: np.isnan(r) | (r == np.inf), off,
                                   "logits must be finite or -inf (a mask)")
        if z.dtype == np.float64:
            total = float(np.sum(losses, dtype=np.float64))
        else:  # the kernel's own float64 sum, not a sum of float32-rounded rows
            total = softmax_cross_entropy(z, y, reduction="sum", n_threads=nt)
        rows = np.arange(len(y))
        top = np.argmax(z, axis=1)
        lse = logsumexp(z, n_threads=nt).astype(np.float64)
        with np.errstate(invalid="ignore"):
            conf = np.exp(z[rows, top].astype(np.float64) - lse)  # max softmax probability
        conf = np.nan_to_num(conf, nan=0.0)  # a fully masked row: no probability anywhere
        return losses.astype(np.float64), total, top, conf

    def _prob_stats(self, p, y):
        off = self.row_offset + self.n_rows
        s = p.sum(axis=1, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(s))
        if bad.size:
            raise _first_bad_entry(p, bad, lambda r: ~np.isfinite(r), off, "probabilities must be finite")
        neg = np.flatnonzero(p.min(axis=1) < 0) if p.size else bad
        if neg.size:
            raise _first_bad_entry(p, neg, lambda r: r < 0, off, "probabilities must be >= 0")
        zero = np.flatnonzero(s <= 0)
        if zero.size:
            raise ValueError(f"predictions row {off + int(zero[0])} sums to 0: probabilities need a positive sum")
        losses = prob_cross_entropy(p, y)
        rows = np.arange(len(y))
        top = np.argmax(p, axis=1)
        conf = np.minimum(p[rows, top] / s, 1.0)
        return losses, float(np.sum(losses)), top, conf

    def _rank_hits(self, a, y) -> int:
        """Rows whose label ranks < top_k (by value, ties broken by class index)."""
        k = self.top_k
        if k >= self.n_classes:
            return len(y)
        ay = a[np.arange(len(y)), y][:, None]
        above = np.count_nonzero(a > ay, axis=1)
        hit = above < k
        tied = np.flatnonzero(hit & (np.count_nonzero(a == ay, axis=1) > 1))
        for i in tied:  # rare: other classes equal to the label's value
            hit[i] = above[i] + np.count_nonzero(a[i, : y[i]] == a[i, y[i]]) < k
        return int(np.count_nonzero(hit))

    def update(self, predictions, labels) -> MetricsAccumulator:
        """Adds one batch: ``predictions`` (N, C), ``labels`` (N,) or one-hot (N, C)."""
        a = self._predictions(predictions)
        y = self._labels(labels, a.shape[0])
        if not len(y):
            return self
        losses, total, top, conf = (self._logit_stats if self.from_logits else self._prob_stats)(a, y)
        correct = top == y
        self.loss_sum += total
        self.n_correct += int(np.count_nonzero(correct))
        self.n_top_k += self._rank_hits(a, y)
        b = np.searchsorted(self._inner_edges, conf, side="left")  # bin i holds (i/M, (i+1)/M]
        M = self.n_bins
        self.bin_count += np.bincount(b, minlength=M)
        self.bin_correct += np.bincount(b, weights=correct, minlength=M).astype(np.int64)
        self.bin_confidence += np.bincount(b, weights=conf, minlength=M)
        self.class_loss += np.bincount(y, weights=losses, minlength=self.n_classes)
        self.class_count += np.bincount(y, minlength=self.n_classes)
        self.n_rows += len(y)
        return self

    def merge(self, other: MetricsAccumulator) -> MetricsAccumulator:
        """Adds ``other``'s batches to this accumulator (same classes, input kind, k and bins)."""
        key = ("n_classes", "from_logits", "top_k", "n_bins")
        if any(getattr(self, k) != getattr(other, k) for k in key):
            raise ValueError("cannot merge accumulators with different n_classes, from_logits, top_k or n_bins")
        self.n_rows += other.n_rows
        self.loss_sum += other.loss_sum
        self.n_correct += other.n_correct
        self.n_top_k += other.n_top_k
        for name in ("bin_count", "bin_correct", "bin_confidence", "class_loss", "class_count"):
            getattr(self, name).__iadd__(getattr(other, name))
        return self

    def result(self) -> dict:
        """The metrics as a dict (floats, and NumPy arrays for the bins and classes); the rate
        metrics are NaN while no row has been seen."""
        n = self.n_rows
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ce = self.loss_sum / n if n else float("nan")
            cnt = self.bin_count
            return {
                "n_rows": n,
                "n_classes": self.n_classes,
                "input": "logits" if self.from_logits else "probabilities",
                "cross_entropy": ce,
                "perplexity": float(np.exp(ce)),
                "accuracy": self.n_correct / n if n else float("nan"),
                "top_k": self.top_k,
                "top_k_accuracy": self.n_top_k / n if n else float("nan"),
                "ece": float(np.abs(self.bin_correct - self.bin_confidence).sum() / n) if n else float("nan"),
                "calibration": {
                    "bin_edges": np.linspace(0.0, 1.0, self.n_bins + 1),
                    "count": cnt.copy(),
                    "confidence": np.where(cnt > 0, self.bin_confidence / cnt, np.nan),
                    "accuracy": np.where(cnt > 0, self.bin_correct / cnt, np.nan),
                },
                "per_class": {
                    "support": self.class_count.copy(),
                    "loss": np.where(self.class_count > 0, self.class_loss / self.class_count, np.nan),
                },
            }


def evaluate(predictions, labels, *, from_logits=True, top_k=5, n_bins=15, chunk_rows=None, n_threads=None) -> dict:
    """Metrics of ``predictions`` (N, C) against ``labels`` (N,) or one-hot (N, C), computed
    chunk by chunk (``chunk_rows``, default about 64 MB of predictions per chunk), so a
    ``np.load(..., mmap_mode="r")`` array larger than memory streams. Returns
    :meth:`MetricsAccumulator.result`; see :class:`MetricsAccumulator` for the definitions."""
    a = np.asarray(predictions)
    if a.ndim != 2:
        raise ValueError(f"predictions must be 2-d (rows, classes), got shape {a.shape}")
    acc = MetricsAccumulator(a.shape[1], from_logits=from_logits, top_k=top_k, n_bins=n_bins, n_threads=n_threads)
    y = np.asarray(labels)
    if y.shape[:1] != a.shape[:1]:
        raise ValueError(f"labels have shape {y.shape} but predictions have {a.shape[0]} rows")
    step = int(chunk_rows) if chunk_rows is not None else default_chunk_rows(a.shape[1], a.dtype.itemsize)
    if step < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    for i in range(0, a.shape[0], step):
        acc.update(a[i : i + step], y[i : i + step])
    return acc.result()
