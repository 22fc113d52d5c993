"""scikit-learn estimators built on xent's kernels (needs ``pip install xent[sklearn]``).

    SoftmaxRegression      multinomial logistic regression (binomial for two classes)
    neg_log_loss_scorer    a scorer: minus the mean cross-entropy of ``decision_function``

``import xent`` does not import scikit-learn; ``xent.linear_model`` (or
``from xent.linear_model import ...``) does.
"""
from ._scoring import neg_log_loss_scorer
from ._softmax_regression import SoftmaxRegression

__all__ = ["SoftmaxRegression", "neg_log_loss_scorer"]
