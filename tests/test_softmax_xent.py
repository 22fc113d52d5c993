"""softmax_cross_entropy against the float64 reference: integer labels, target
distributions, reductions, gradients, any axis, masks and edge cases."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL

DTYPES = [np.float32, np.float64]
LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 25, 2047, 2049, 50_000]


def _case(rng, n, C, dtype, scale=3.0):
    x = (rng.standard_normal((n, C)) * scale).astype(dtype)
    y = rng.integers(0, C, n)
    return x, y


def _soft_targets(rng, shape, dtype):
    t = rng.random(shape) ** 3
    return (t / t.sum(-1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", LENGTHS)
def test_labels_random(isa, rng, dtype, C):
    x, y = _case(rng, 4, C, dtype)
    loss, grad = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_labels(x, y)
    assert loss.dtype == dtype and grad.dtype == dtype and loss.shape == (4,)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 8, 9, 2049])
def test_targets_random(isa, rng, dtype, C):
    x = (rng.standard_normal((5, C)) * 3).astype(dtype)
    t = _soft_targets(rng, (5, C), dtype)
    loss, grad = xent.softmax_cross_entropy(x, t, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_targets(x, t)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_hot_targets_equal_labels(isa, rng, dtype):
    x, y = _case(rng, 64, 13, dtype)
    t = np.eye(13, dtype=dtype)[y]
    l1, g1 = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    l2, g2 = xent.softmax_cross_entropy(x, t, reduction="none", return_grad=True)
    np.testing.assert_allclose(l1, l2, **LOSS_TOL[dtype])
    np.testing.assert_allclose(g1, g2, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_and_their_gradient(isa, rng, dtype, reduction):
    x, y = _case(rng, 37, 11, dtype)
    loss, grad = xent.softmax_cross_entropy(x, y, reduction=reduction, return_grad=True)
    assert isinstance(loss, float)
    rl, rg = ref.softmax_xent_labels(x, y)
    k = 1.0 if reduction == "sum" else 1.0 / len(y)
    np.testing.assert_allclose(loss, rl.sum() * k, rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(grad, rg * k, **GRAD_TOL[dtype])
    assert xent.softmax_cross_entropy(x, y, reduction=reduction) == loss
    assert xent.softmax_cross_entropy(x, y) == xent.softmax_cross_entropy(x, y, reduction="mean")


@pytest.mark.parametrize("labels", ["int", "soft"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradient_matches_finite_differences(isa, rng, labels, reduction):
    x = rng.standard_normal((3, 6))
    y = rng.integers(0, 6, 3) if labels == "int" else _soft_targets(rng, (3, 6), np.float64) * 1.5
    _, grad = xent.softmax_cross_entropy(x, y, reduction=reduction, return_grad=True)
    num = ref.numeric_grad(lambda v: xent.softmax_cross_entropy(v, y, reduction=reduction), x)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pytorch_layout_axis_1(isa, rng, dtype):
    # (N, C, d1, d2) with the class axis 1, as PyTorch's cross_entropy takes it
    x = rng.standard_normal((2, 5, 3, 4)).astype(dtype)
    y = rng.integers(0, 5, (2, 3, 4))
    loss, grad = xent.softmax_cross_entropy(x, y, axis=1, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_labels(x, y, axis=1)
    assert loss.shape == (2, 3, 4) and grad.shape == x.shape
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])
    t = _soft_targets(rng, (2, 3, 4, 5), dtype).transpose(0, 3, 1, 2)
    loss, grad = xent.softmax_cross_entropy(x, t, axis=1, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_targets(x, t, axis=1)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("ldtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
def test_any_integer_label_dtype(isa, rng, ldtype):
    x, y = _case(rng, 20, 7, np.float32)
    expect = xent.softmax_cross_entropy(x, y, reduction="none")
    np.testing.assert_array_equal(xent.softmax_cross_entropy(x, y.astype(ldtype), reduction="none"), expect)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits(isa, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 0.5, -1e4 + 2, -1e4]], dtype=dtype)
    for y in ([0, 2], [1, 3], [3, 0]):
        loss, grad = xent.softmax_cross_entropy(x, np.array(y), reduction="none", return_grad=True)
        rl, rg = ref.softmax_xent_labels(x, np.array(y))
        np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
        np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])
    big = np.finfo(dtype).max
    xb = np.array([[big, -big, 0.0]], dtype=dtype)
    loss = xent.softmax_cross_entropy(xb, np.array([0]), reduction="none")
    assert loss[0] == 0
    loss = xent.softmax_cross_entropy(xb, np.array([1]), reduction="none")
    assert loss[0] == np.inf  # 2*big overflows: the correctly rounded answer, never NaN
    assert not np.isnan(xent.softmax_cross_entropy(xb, np.array([2]), reduction="none")).any()


def test_small_loss_keeps_relative_accuracy(isa):
    # a confident, correct prediction: the loss ~ 4.5e-5 must keep its digits
    x = np.array([[10.0, 0.0, 0.0]], dtype=np.float32)
    rl, _ = ref.softmax_xent_labels(x, np.array([0]))
    loss = xent.softmax_cross_entropy(x, np.array([0]), reduction="none")
    np.testing.assert_allclose(loss, rl, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_labels(isa, dtype):
    inf = np.inf
    x = np.array([[-inf, 1.0, -inf, 2.0], [-inf, -inf, -inf, -inf], [0.5, -inf, 3.0, -inf]], dtype=dtype)
    y = np.array([1, 2, 1])
    loss, grad = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_labels(x, y)
    assert loss[1] == inf and np.all(grad[1] == 0)  # fully masked row
    assert loss[2] == inf  # the label is a masked class
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_targets(isa, dtype):
    inf = np.inf
    x = np.array([[-inf, 1.0, -inf, 2.0], [-inf, -inf, -inf, -inf], [-inf, -inf, -inf, -inf], [0.0, -inf, 1.0, 2.0]],
                 dtype=dtype)
    t = np.array([[0, 0.5, 0, 0.5], [0, 0, 0, 0], [0.2, 0.8, 0, 0], [0.1, 0.3, 0.6, 0]], dtype=dtype)
    loss, grad = xent.softmax_cross_entropy(x, t, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_targets(x, t)
    assert np.isfinite(loss[0])  # 0 * log 0 = 0 on the masked classes
    assert loss[1] == 0 and loss[2] == inf and loss[3] == inf
    assert np.all(grad[1] == 0) and np.all(grad[2] == 0)
    assert not np.isnan(loss).any() and not np.isnan(grad).any()
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


def test_mask_blocks_before_the_max(isa, rng):
    x = np.full((1, 6000), -np.inf)
    x[0, 5000:] = rng.standard_normal(1000)
    t = np.zeros_like(x)
    t[0, 5500:] = 1.0 / 500
    for lab in (np.array([5999]), t):
        loss, grad = xent.softmax_cross_entropy(x, lab, reduction="none", return_grad=True)
        rl, rg = (ref.softmax_xent_labels if lab.dtype.kind == "i" else ref.softmax_xent_targets)(x, lab)
        np.testing.assert_allclose(loss, rl, **LOSS_TOL[np.float64])
        np.testing.assert_allclose(grad, rg, **GRAD_TOL[np.float64])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_confined_to_row(isa, rng, bad):
    x, y = _case(rng, 4, 20, np.float32)
    x[2, 5] = bad
    loss, grad = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    assert np.isfinite(loss[[0, 1, 3]]).all() and np.isfinite(grad[[0, 1, 3]]).all()
    assert np.isnan(loss[2]) or loss[2] == np.inf
    assert np.isnan(grad[2]).any()


def test_finite_input_never_nan(isa, rng):
    for scale in (1e-30, 1.0, 1e3, 1e30, 3e38):
        x = (rng.uniform(-1, 1, (50, 17)) * scale).astype(np.float32)
        y = rng.integers(0, 17, 50)
        loss, grad = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
        assert not np.isnan(loss).any() and not np.isnan(grad).any()


def test_one_class_and_empty_batch(isa):
    x = np.array([[2.0], [-5.0]])
    loss, grad = xent.softmax_cross_entropy(x, np.array([0, 0]), reduction="none", return_grad=True)
    assert np.all(loss == 0) and np.all(grad == 0)
    e = np.zeros((0, 5), dtype=np.float32)
    for red in ("mean", "sum"):
        loss, grad = xent.softmax_cross_entropy(e, np.zeros(0, dtype=np.int64), reduction=red, return_grad=True)
        assert loss == 0.0 and grad.shape == (0, 5)
    assert xent.softmax_cross_entropy(e, np.zeros((0, 5), np.float32), reduction="none").shape == (0,)


def test_non_contiguous_read_only_not_modified(isa, rng):
    base = rng.standard_normal((10, 40))
    x = base[::2, ::3]
    y = rng.integers(0, x.shape[1], 10)[::2]
    t = _soft_targets(rng, (5, 14), np.float64).T.copy().T  # F-ordered
    for a in (x, y, t):
        a.flags.writeable = False
    before = [a.copy() for a in (x, y, t)]
    loss, grad = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_labels(x, y)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[np.float64])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[np.float64])
    loss, grad = xent.softmax_cross_entropy(x, t, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_targets(x, t)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[np.float64])
    for a, b in zip((x, y, t), before):
        np.testing.assert_array_equal(a, b)


def test_targets_of_other_dtype_are_converted(isa, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    t = _soft_targets(rng, (3, 4), np.float64)
    np.testing.assert_allclose(
        xent.softmax_cross_entropy(x, t, reduction="none"),
        xent.softmax_cross_entropy(x, t.astype(np.float32), reduction="none"),
    )


def _log_sum_rows(C):
    """Rows whose loss at the argmax label is log(ones + rest) alone: ties (ones = 1..3) with
    every other class d below (rest from 1e-300 to 60), rest set around the kernel's reduction
    points (sqrt2 - 1, 1, s = 2), and random rows."""
    rows = []
    for d in (0.5, 1, 5, 20, 100, 300, 700):
        for ties in (1, 2, 3):
            z = np.full(C, -d)
            z[:ties] = 0
            rows.append(z)
    for r in (1e-300, 1e-20, 1e-8, 0.3, 0.41, 0.4142, 0.42, 0.9, 0.999, 1.0, 1.001, 2.5):
        z = np.full(C, np.log(r / (C - 1)))
        z[0] = 0
        rows.append(z)
    rng = np.random.default_rng(5)
    rows += [rng.standard_normal(C) * s for s in (0.1, 1, 3, 10, 30) for _ in range(8)]
    return np.array(rows)


def _late_max_rows(C):
    """Rows whose max (one, or ties far apart) is past the first chunks and blocks of the
    row, every other class d below: the kernels keep exp(0) = 1 out of their float sums only
    where a chunk holds the max."""
    rows = []
    spots = [[C - 1], [C // 3], [C // 3, C - 1], [1, C // 2, C - 2]]
    for where in spots:
        for d in (3, 20, 100, 300):
            z = np.full(C, -float(d))
            z[where] = 1.5
            z[C // 4] = 1.5 - d / 2  # a term between, in another chunk
            rows.append(z)
    return np.array(rows)


def _log_sum_ref(z):
    z = z.astype(np.longdouble)
    m = z.max()
    ones = np.longdouble((z == m).sum())
    return np.log(ones) + np.log1p(np.exp(z[z < m] - m).sum() / ones)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1000, 5000])
def test_max_in_a_later_chunk_keeps_digits(isa, dtype, C):
    """A confident row's loss log(1 + rest) (or log(ties + rest)) keeps rest's relative
    digits wherever the max is: in the last chunk of a row, in a later block, or tied across
    chunks. The gradient p - onehot is within a few eps (p - 1 at the max cancels: absolute)."""
    z = _late_max_rows(C).astype(dtype)
    y = z.argmax(1)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    want = np.array([_log_sum_ref(r) for r in z])
    normal = want >= np.finfo(dtype).tiny
    rel = np.abs(loss.astype(np.longdouble) - want)[normal] / want[normal] / np.finfo(dtype).eps
    assert rel.max() <= 8, f"{rel.max():.2f} eps at row {np.flatnonzero(normal)[rel.argmax()]}"
    lse = np.array([r.astype(np.longdouble).max() + _log_sum_ref(r) for r in z])
    p = np.exp(z.astype(np.longdouble) - lse[:, None])
    p[np.arange(len(z)), y] -= 1
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(grad, p.astype(np.float64), rtol=16 * eps, atol=2 * eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [64, 5000])
def test_row_log_of_sum_keeps_digits(isa, dtype, C):
    """The row kernels' log(s), s = ones + rest (RowLse::log_sum: no libm): within a few
    float64 ulp of the long double value, and log1p(rest)'s relative digits on confident rows
    (rest ~ 1e-300 would be lost in 1 + rest)."""
    z = _log_sum_rows(C).astype(dtype)
    loss = xent.softmax_cross_entropy(z, z.argmax(1), reduction="none")
    want = np.array([_log_sum_ref(r) for r in z])
    normal = want >= np.finfo(dtype).tiny  # (float32 losses of confident rows are subnormal)
    rel = np.abs(loss.astype(np.longdouble) - want)[normal] / want[normal] / np.finfo(dtype).eps
    assert rel.max() <= 8, f"{rel.max():.2f} eps at row {np.flatnonzero(normal)[rel.argmax()]}"
