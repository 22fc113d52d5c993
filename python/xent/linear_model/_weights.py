"""Row weights of a fit: validated sample weights times the class weight of each row's label."""
from __future__ import annotations

import numbers

import numpy as np


def check_sample_weight(sample_weight, n_samples: int):
    """``None`` or a float64 array of shape (n_samples,), finite and >= 0 (a scalar is
    broadcast, as scikit-learn does). Never a view of the caller's array."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n_samples, sample_weight, dtype=np.float64)
    else:
        a = np.asarray(sample_weight)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"sample_weight must be real numbers, got dtype {a.dtype}")
        if a.shape != (n_samples,):
            raise ValueError(f"sample_weight has shape {a.shape} but must have shape ({n_samples},), one per sample")
        sw = np.array(a, dtype=np.float64)
    bad = ~(np.isfinite(sw) & (sw >= 0))
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise ValueError(f"sample_weight[{at}] = {float(sw[at])!r}: sample weights must be finite and >= 0")
    return sw


# TODO(lead): replace by xent.compute_class_weight(y, scheme=..., normalize=...) after the merge.
def _class_weight(y, n_classes: int, scheme: str, sample_weight=None, normalize: bool = False):
    """Per-class weights from the (weighted) class counts ``count_c`` of ``y`` in
    ``[0, n_classes)``, ``n = sum_c count_c`` (SEMANTICS.md's recipes):

    - ``"balanced"``: ``n / (n_classes * count_c)`` (scikit-learn; since scikit-learn 1.6
      the counts are weighted by ``sample_weight``, and so are they here);
    - ``"log"``: ``max(1, log(n / count_c))``, divided by the largest weight if ``normalize``.

    A class with a zero count is a ValueError.
    """
    counts = np.bincount(y, weights=sample_weight, minlength=n_classes).astype(np.float64)
    if not (counts > 0).all():
        c = int(np.flatnonzero(~(counts > 0))[0])
        raise ValueError(f"class_weight={scheme!r}: class index {c} has zero (weighted) count")
    n = counts.sum()
    if scheme == "balanced":
        w = n / (n_classes * counts)
    elif scheme == "log":
        w = np.maximum(1.0, np.log(n / counts))
    else:
        raise ValueError(f"unknown class weight scheme {scheme!r}")
    return w / w.max() if normalize else w


def class_weight_vector(class_weight, classes, y, sample_weight):
    """One weight per entry of ``classes`` from ``class_weight`` (None, a dict keyed by
    class label, "balanced" or "log"); ``y`` holds the class indices of the rows."""
    k = len(classes)
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight not in ("balanced", "log"):
            raise ValueError(f"class_weight must be None, a dict, 'balanced' or 'log', got {class_weight!r}")
        return _class_weight(y, k, class_weight, sample_weight)
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be None, a dict, 'balanced' or 'log', got {type(class_weight).__name__}")
    w = np.ones(k)
    found = 0
    for i, c in enumerate(classes):
        if c in class_weight:
            w[i] = float(class_weight[c])
            found += 1
    if found < len(class_weight) and found < k:
        # scikit-learn's rule: keys that are not classes are an error unless every class
        # has a weight (a class absent from one fold of a cross-validation is fine)
        unknown = [key for key in class_weight if key not in set(classes.tolist())]
        raise ValueError(f"class_weight has keys {unknown} that are not classes; the classes are {classes.tolist()}")
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"class_weight[{classes[i]!r}] = {float(w[i])!r}: class weights must be finite and >= 0")
    return w
