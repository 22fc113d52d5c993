"""Bad input gets a clear Python exception naming the argument; inputs are never modified."""
import numpy as np
import pytest

import xent

X = np.zeros((4, 3), dtype=np.float32)
Y = np.array([0, 1, 2, 0])


@pytest.mark.parametrize("value, pos", [(3, 1), (-1, 2), (100, 0)])
def test_label_out_of_range_names_position_and_value(value, pos):
    y = Y.copy()
    y[pos] = value
    with pytest.raises(ValueError, match=rf"labels\[{pos}\] = {value} is out of range.*\[0, 3\)"):
        xent.softmax_cross_entropy(X, y)


def test_label_position_is_multi_index():
    x = np.zeros((2, 5, 3, 4), dtype=np.float32)
    y = np.zeros((2, 3, 4), dtype=np.int32)
    y[1, 2, 3] = 5
    with pytest.raises(ValueError, match=r"labels\[1, 2, 3\] = 5"):
        xent.softmax_cross_entropy(x, y, axis=1)


def test_huge_unsigned_label():
    y = Y.astype(np.uint64)
    y[3] = np.uint64(2**63 + 5)
    with pytest.raises(ValueError, match=r"labels\[3\] = 9223372036854775813"):
        xent.softmax_cross_entropy(X, y)


def test_shape_mismatches():
    with pytest.raises(ValueError, match="integer labels have shape"):
        xent.softmax_cross_entropy(X, Y[:3])
    with pytest.raises(ValueError, match="labels has shape"):
        xent.softmax_cross_entropy(X, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="targets has shape"):
        xent.sigmoid_cross_entropy(X, np.zeros((4,), np.float32))


@pytest.mark.parametrize("bad", [np.array([[1 + 2j]]), np.array([["a"]]), np.array([[True]]), np.array([[None]])])
def test_wrong_logit_dtypes(bad):
    with pytest.raises(TypeError, match="logits"):
        xent.softmax_cross_entropy(bad, np.array([0]))
    with pytest.raises(TypeError, match="x "):
        xent.softmax(bad)


def test_wrong_label_dtypes():
    with pytest.raises(TypeError, match="labels"):
        xent.softmax_cross_entropy(X, Y.astype(bool))
    with pytest.raises(TypeError, match="labels"):
        xent.softmax_cross_entropy(X, Y.astype(complex))
    with pytest.raises(TypeError, match="targets"):
        xent.sigmoid_cross_entropy(X, np.zeros((4, 3), dtype=object))


def test_axis_and_reduction_and_threads():
    with pytest.raises(np.exceptions.AxisError):
        xent.softmax(X, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        xent.sigmoid_cross_entropy(X, X, axis=-3)
    with pytest.raises(TypeError, match="axis"):
        xent.logsumexp(X, axis=(0, 1))
    with pytest.raises(ValueError, match="reduction"):
        xent.softmax_cross_entropy(X, Y, reduction="batchmean")
    with pytest.raises(ValueError, match="n_threads"):
        xent.softmax_cross_entropy(X, Y, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        xent.softmax_cross_entropy(X, Y, n_threads=1.5)
    with pytest.raises(ValueError, match="at least one dimension"):
        xent.softmax(np.float32(1.0))
    with pytest.raises(ValueError, match="0 classes"):
        xent.softmax_cross_entropy(np.zeros((2, 0)), np.zeros(2, dtype=int))


def test_out_checks():
    with pytest.raises(ValueError, match="out has shape"):
        xent.softmax(X, out=np.empty((4, 2), np.float32))
    with pytest.raises(TypeError, match="out has dtype"):
        xent.softmax(X, out=np.empty((4, 3), np.float64))
    ro = np.empty((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        xent.softmax(X, out=ro)
    buf = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        xent.softmax(buf[:4], out=buf[1:])
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        xent.softmax(X, out=[[0.0] * 3] * 4)


def test_inputs_never_modified(rng):
    x = rng.standard_normal((50, 9)).astype(np.float32)
    y = rng.integers(0, 9, 50)
    t = rng.random((50, 9)).astype(np.float32)
    copies = [a.copy() for a in (x, y, t)]
    xent.softmax_cross_entropy(x, y, return_grad=True)
    xent.softmax_cross_entropy(x, t, return_grad=True, reduction="none")
    xent.sigmoid_cross_entropy(x, t, return_grad=True)
    xent.softmax(x)
    xent.log_softmax(x, axis=0)
    for a, b in zip((x, y, t), copies):
        np.testing.assert_array_equal(a, b)
