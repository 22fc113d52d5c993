"""Class-weight recipes for imbalanced data (inputs for the ``weight=`` of the losses)."""
from __future__ import annotations

import numpy as np

SCHEMES = ("balanced", "log")


def compute_class_weight(y, scheme="balanced", *, classes=None, normalize=False, sample_weight=None):
    """One weight per class from the labels ``y`` (1-d), as a float64 array.

    - ``"balanced"`` (scikit-learn's ``compute_class_weight("balanced", ...)``):
      ``n_samples / (n_classes * count_c)``.
    - ``"log"``: ``max(1, log(n_samples / count_c))``: rare classes weigh more, but only
      logarithmically, and no class weighs less than 1.

    ``normalize=True`` divides the weights by the largest one (so they lie in (0, 1]).

    ``sample_weight`` (one per label, finite and >= 0): the counts are weighted, and
    ``n_samples`` is their total, as in scikit-learn 1.6+.

    Classes: with ``classes=`` the weights follow its order (every label in ``y`` must be
    in it). Without it, integer labels give one weight per class ``0 .. max(y)``, indexed
    by the label (ready for ``softmax_cross_entropy(..., weight=w)``), and other labels
    (strings, floats) the sorted distinct values. A class with no sample (a gap in the
    integer labels, or an entry of ``classes`` absent from ``y``) is a ValueError: its
    weight would be infinite (scikit-learn returns ``inf`` there, with a warning, or
    errors depending on the path).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    yy = np.asarray(y)
    if yy.ndim != 1:
        raise ValueError(f"y must be 1-d class labels, got shape {yy.shape}")
    if yy.size == 0:
        raise ValueError("y is empty: class weights need at least one sample")
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != yy.shape:
            raise ValueError(f"sample_weight has shape {sw.shape} but y has shape {yy.shape}")
        bad = ~(np.isfinite(sw) & (sw >= 0))
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise ValueError(f"sample_weight[{at}] = {float(sw[at])!r}: sample weights must be finite and >= 0")
    if classes is None:
        if yy.dtype.kind in "iu":
            if yy.min() < 0:
                raise ValueError(
                    f"y contains the negative label {int(yy.min())}; pass classes= for labels that are not 0..C-1"
                )
            cls = np.arange(int(yy.max()) + 1)
            counts = np.bincount(yy.astype(np.int64), weights=sw, minlength=cls.size)
        else:
            cls, inv = np.unique(yy, return_inverse=True)
            counts = np.bincount(inv.reshape(-1), weights=sw, minlength=cls.size)
    else:
        cls = np.asarray(classes)
        if cls.ndim != 1 or cls.size == 0:
            raise ValueError(f"classes must be a non-empty 1-d array, got shape {cls.shape}")
        order = np.argsort(cls, kind="stable")
        srt = cls[order]
        if srt.size > 1 and np.any(srt[1:] == srt[:-1]):
            raise ValueError("classes contains duplicates")
        pos = np.clip(np.searchsorted(srt, yy), 0, srt.size - 1)
        known = srt[pos] == yy
        if not known.all():
            raise ValueError(f"y contains labels not in classes: {sorted(set(yy[~known].tolist()))!r}")
        counts = np.zeros(cls.size, dtype=np.float64)
        counts[order] = np.bincount(pos, weights=sw, minlength=srt.size)
    absent = counts == 0
    if absent.any():
        raise ValueError(
            f"classes {cls[absent].tolist()!r} have no (weighted) samples in y (their weight would be infinite)"
            + ("; pass classes= to choose the classes" if classes is None else "")
        )
    c = counts.astype(np.float64)
    n = float(yy.size) if sw is None else float(c.sum())
    w = n / (cls.size * c) if scheme == "balanced" else np.maximum(1.0, np.log(n / c))
    if normalize:
        w = w / w.max()
    return w
