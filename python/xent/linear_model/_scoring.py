"""Log-loss scorer on logits: ``softmax_cross_entropy`` of ``decision_function``.

Use it as ``scoring=neg_log_loss_scorer`` in ``GridSearchCV``, ``cross_val_score``, ...
It equals scikit-learn's ``"neg_log_loss"`` scorer (minus the mean cross-entropy, sample
weights giving ``sum(sw * l) / sum(sw)``), but computes ``logsumexp(z) - z[y]`` from the
logits instead of ``-log(clip(p, eps, 1))`` from probabilities, so it never clips: a
confident wrong prediction costs its true (large) loss. ``"neg_log_loss"`` itself also
works with SoftmaxRegression (it calls ``predict_proba``).

The same scorer for any classifier with a ``decision_function`` that returns logits::

    from sklearn.metrics import make_scorer
    scorer = make_scorer(_log_loss_from_logits, greater_is_better=False,
                         response_method="decision_function", labels=classes)

(``labels``: all the classes, sorted, when a test fold may lack one of them.)
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import make_scorer

from .._softmax import softmax_cross_entropy


# The scorer reads logits (decision_function), so it computes the log-loss from them with
# softmax_cross_entropy: no rounding to probabilities and no clipping, unlike
# xent.metrics.log_loss / sklearn's, which take probabilities.
def _log_loss_from_logits(y_true, logits, *, labels=None, sample_weight=None):
    """Mean softmax cross-entropy of ``logits`` (n, n_classes), or of binary logits (n,)
    (class ``labels[1]`` when positive), against labels ``y_true``; ``labels`` defaults to
    the sorted unique values of ``y_true``, the order of ``classes_``."""
    z = np.asarray(logits, dtype=np.float64)
    classes = np.unique(y_true) if labels is None else np.asarray(labels)
    if z.ndim == 1:
        z = np.stack([np.zeros_like(z), z], axis=1)
    if z.ndim != 2 or z.shape[1] != len(classes):
        raise ValueError(
            f"logits have shape {z.shape} but there are {len(classes)} labels {classes.tolist()}: "
            "pass labels= with every class when y_true lacks some"
        )
    y = np.asarray(y_true)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    if not np.all(classes[idx] == y):
        raise ValueError(f"y_true has labels that are not in labels={classes.tolist()}")
    return softmax_cross_entropy(z, idx.astype(np.int64), sample_weight=sample_weight)


neg_log_loss_scorer = make_scorer(_log_loss_from_logits, greater_is_better=False, response_method="decision_function")
