"""binary_cross_entropy (from probabilities) runs on the sigmoid losses' work units (api.cpp,
run_proba; units-inl.hpp, sigmoid_units_flat): the rows laid end to end in their logical
order, cut into units, whole rows per unit with a loss per row. So every memory layout gives
the same bits, sums included (the sum over every element depended on the layout before), and
short rows with ``axis`` share a kernel call. Against the extended-precision Keras formula
across unit and task boundaries, and rows of a unit or more."""
import numpy as np
import pytest

import xent
from conftest import LOSS_TOL
from test_proba import keras_binary, random_probs
from test_sigmoid_flat import _layouts

SEG = 1 << 13  # elements per work unit (api.cpp, kSigmoidSeg)
DTYPES = [np.float32, np.float64]
SHAPES = [(700, 37), (5, 3, 1300), (3, SEG + 5), (SEG + 3, 2), (1, 1), (0, 4)]


def _data(rng, shape, dtype):
    p = random_probs(rng, shape, dtype)
    t = rng.random(shape).astype(dtype)
    t.reshape(-1)[::3] = np.round(t.reshape(-1)[::3])
    return p, t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_binary_against_reference(isa, rng, dtype, shape, axis, ls):
    p, t = _data(rng, shape, dtype)
    eps = 1e-3
    ref = keras_binary(p, t, eps=eps, ls=ls)
    per = ref if axis is None else ref.sum(axis=axis)
    loss = xent.binary_cross_entropy(p, t, eps=eps, axis=axis, label_smoothing=ls, reduction="none")
    assert loss.shape == per.shape and loss.dtype == dtype
    terms = 1 if axis is None else shape[axis]
    tol = LOSS_TOL[dtype]
    # a row's loss: its terms' errors (each within the elementwise contract) add up
    np.testing.assert_allclose(loss, per.astype(np.float64), rtol=tol["rtol"], atol=tol["atol"] * terms)
    total = xent.binary_cross_entropy(p, t, eps=eps, axis=axis, label_smoothing=ls, reduction="sum")
    assert total == pytest.approx(float(ref.sum()), rel=tol["rtol"], abs=tol["atol"] * max(ref.size, 1))
    mean = xent.binary_cross_entropy(p, t, eps=eps, axis=axis, label_smoothing=ls)
    if per.size:
        assert mean == pytest.approx(float(ref.sum()) / per.size, rel=tol["rtol"], abs=tol["atol"] * terms)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[:4])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_binary_same_bits_for_every_layout(isa, rng, dtype, shape, axis, reduction):
    p, t = _data(rng, shape, dtype)
    runs = {}
    for (name, pl), tl in zip(_layouts(p).items(), _layouts(t).values()):
        pl0 = pl.copy()
        runs[name] = xent.binary_cross_entropy(pl, tl, axis=axis, label_smoothing=0.1, reduction=reduction,
                                               return_grad=True)
        np.testing.assert_array_equal(pl, pl0)
    l0, g0 = runs["C"]
    for name, (loss, grad) in runs.items():
        np.testing.assert_array_equal(loss, l0, err_msg=name)
        np.testing.assert_array_equal(grad, g0, err_msg=name)


@pytest.mark.parametrize("axis", [None, -1])
def test_binary_threads_and_in_place(isa, rng, axis):
    p, t = _data(rng, (9000, 29), np.float32)  # many units, several tasks
    runs = [xent.binary_cross_entropy(p, t, axis=axis, reduction="none", return_grad=True, n_threads=n)
            for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        np.testing.assert_array_equal(loss, runs[0][0])
        np.testing.assert_array_equal(grad, runs[0][1])
    sums = {xent.binary_cross_entropy(p, t, axis=axis, reduction="sum", n_threads=n) for n in (1, 2, 3)}
    assert len(sums) == 1
