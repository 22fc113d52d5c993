"""Row weights of a fit: validated sample weights times the class weight of each row's label."""
from __future__ import annotations

import numbers

import numpy as np

from .._class_weight import compute_class_weight


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


def class_weight_vector(class_weight, classes, y, sample_weight):
    """One weight per entry of ``classes`` from ``class_weight`` (None, a dict keyed by
    class label, "balanced" or "log"); ``y`` holds the class indices of the rows."""
    k = len(classes)
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight not in ("balanced", "log"):
            raise ValueError(f"class_weight must be None, a dict, 'balanced' or 'log', got {class_weight!r}")
        # counts weighted by sample_weight, as scikit-learn 1.6+ does for "balanced"
        return compute_class_weight(y, class_weight, classes=np.arange(k), sample_weight=sample_weight)
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
