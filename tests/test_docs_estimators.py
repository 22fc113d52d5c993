"""The user-written estimator of docs/estimators.md (and its copy in the README) runs,
passes basic scikit-learn use, and solves the same problem as SoftmaxRegression with
C = 1 / (alpha * n_samples)."""
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "estimators.md", ROOT / "README.md"]


def _example_code(doc):
    text = doc.read_text()
    section = text.split("own estimator", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _example_namespace(doc=DOCS[0]):
    ns: dict = {}
    exec(compile(_example_code(doc), str(doc), "exec"), ns)
    return ns


def test_readme_shows_the_tested_example():
    assert _example_code(DOCS[1]) == _example_code(DOCS[0])


def test_docs_example_estimator():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score
    from sklearn.preprocessing import StandardScaler

    from xent.linear_model import SoftmaxRegression

    Tiny = _example_namespace()["TinySoftmaxClassifier"]
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    alpha = 1e-2
    tiny = Tiny(alpha=alpha).fit(X, labels)
    ref = SoftmaxRegression(C=1 / (alpha * len(y)), tol=1e-10, max_iter=10_000, n_threads=1).fit(X, labels)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(tiny.coef_, ref.coef_, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(tiny.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-4)  # scipy: ftol
    assert set(tiny.predict(X)) <= set(labels)
    assert cross_val_score(Tiny(alpha=alpha), X, labels, cv=3).mean() > 0.9
