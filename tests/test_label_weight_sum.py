"""The denominator of a weighted mean with integer labels, sum over rows of weight[y] *
sample_weight without the ignored rows (_core.label_weight_sum). Over contiguous labels
(and sample weights): a count for ignore_index alone, the sample weights' vector sum without
class weights nor ignore_index, by class (counts of each label times its weight) for class
weights alone, else a compensated sum row by row, as for any other layout. Each within an
ulp or two of the exact sum, against math.fsum of the exact terms."""
import math

import numpy as np
import pytest

import xent
from xent import _core


def _exact(y, w, sw, ignore):
    y = np.asarray(y).ravel()
    keep = np.ones(y.shape, bool) if ignore is None else y != ignore
    terms = np.ones(int(keep.sum())) if w is None else w.astype(np.float64)[y[keep]]
    if sw is not None:
        terms = terms * np.asarray(sw, dtype=np.float64).ravel()[keep]  # (exact: float32 x float32 in float64)
    return math.fsum(terms)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ldtype", [np.int32, np.int64])
@pytest.mark.parametrize("C", [1, 3, 10, 1000])
@pytest.mark.parametrize("ignore", [None, -100, 1])
@pytest.mark.parametrize("weighted", [True, False])
def test_by_class_and_by_row(rng, dtype, ldtype, C, ignore, weighted):
    w = rng.uniform(0.0, 3.0, C).astype(dtype) if weighted else None
    if weighted:
        w[rng.integers(0, C)] = 0
    for n in (0, 1, 5, 3001):
        y = rng.integers(0, C, n).astype(ldtype)
        if ignore is not None and n:
            y[rng.random(n) < 0.2] = ignore
        want = _exact(y, w, None, ignore)
        got = _core.label_weight_sum(y, w, None, ignore)
        assert got == pytest.approx(want, rel=5e-16, abs=0)
        # the same sum through the other forms: 2-d, strided (row by row), with sample weights
        if n % 3 == 0 and n:
            got2 = _core.label_weight_sum(y.reshape(3, -1), w, None, ignore)
            assert got2 == pytest.approx(want, rel=5e-16, abs=0)
        if n > 1:
            ys = y[::2]
            assert _core.label_weight_sum(ys, w, None, ignore) == pytest.approx(_exact(ys, w, None, ignore),
                                                                              rel=5e-16, abs=0)
        sw = rng.uniform(0.0, 2.0, n).astype(dtype)
        want = _exact(y, w, sw, ignore)
        assert _core.label_weight_sum(y, w, sw, ignore) == pytest.approx(want, rel=5e-16, abs=0)
        if n > 1:  # sample weights strided: row by row
            sw2 = np.repeat(sw, 2)[::2]
            assert _core.label_weight_sum(y, w, sw2, ignore) == pytest.approx(want, rel=5e-16, abs=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflow_gives_inf(dtype):
    big = np.finfo(dtype).max
    w = np.array([big, big / 4, 1.0], dtype=dtype)
    y = np.array([0, 2, 1, 1, 2])
    got = _core.label_weight_sum(y, w, None, None)
    if dtype == np.float32:  # finite in float64
        assert got == pytest.approx(math.fsum([float(big), 1.0, float(big / 4), float(big / 4), 1.0]), rel=5e-16)
    else:
        assert got == np.inf
        assert _core.label_weight_sum(y[1:], w, None, None) == pytest.approx(2.0 + float(big) / 2, rel=5e-16)


def test_weighted_mean_uses_it(rng):
    # softmax_cross_entropy's "mean" over class weights: the sum of weighted losses over it
    z = rng.standard_normal((4001, 3)).astype(np.float32)
    y = rng.integers(0, 3, 4001)
    w = np.array([0.5, 2.0, 1.25], dtype=np.float32)
    for ignore in (None, 1):
        kw = dict(weight=w) if ignore is None else dict(weight=w, ignore_index=ignore)
        mean = xent.softmax_cross_entropy(z, y, **kw)
        total = xent.softmax_cross_entropy(z, y, reduction="sum", **kw)
        assert mean == pytest.approx(total / _exact(y, w, None, ignore), rel=2e-6)
