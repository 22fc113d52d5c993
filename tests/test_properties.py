"""Property-based tests (hypothesis): invariants that must hold for every input.

Inputs are drawn over shapes (0-size dimensions, 1 class, vector-width tails), class axes,
float32/float64, integer labels and target distributions, reductions, every runnable ISA,
and values from ordinary to extreme (+-1e4, tiny and subnormal numbers, -inf masks). The
properties: agreement with the float64 references within the tolerances of conftest.py;
no NaN from non-NaN input and finite losses from finite input; shift invariance; gradient
rows of softmax losses summing to 0; sigmoid losses >= 0 with gradients in [-1, 1].

Runs are bounded (120 examples per test, no deadline; XENT_PROPERTY_EXAMPLES=5000 for a
deeper search). Under CI (CI set) the examples are derandomized, so a run is reproducible;
locally every run explores new ones.
"""
import contextlib
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL, RUNNABLE_ISAS
from xent import _core

SETTINGS = settings(
    max_examples=int(os.environ.get("XENT_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None if os.environ.get("CI") else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = st.sampled_from([np.float32, np.float64])
REDUCTIONS = st.sampled_from(["none", "sum", "mean"])

# Logit values: ordinary ones, and the extremes the kernels must survive: +-1e4 (where a
# naive lse - z[y] loses every digit in float32), tiny, subnormal (in both dtypes) and 0.
EXTREMES = [1e4, -1e4, 1e3, 1e-30, -1e-30, 1e-40, 5e-324, 0.0, 88.0, -104.0, 709.0, -745.0]
VALUES = st.one_of(st.floats(-40, 40, allow_nan=False, allow_infinity=False, allow_subnormal=True),
                   st.sampled_from(EXTREMES))


@contextlib.contextmanager
def kernels(name):
    """Runs the block with the kernel set `name`, restoring the one in use after."""
    before = _core.config()["isa"]
    assert _core.set_isa(name)
    try:
        yield
    finally:
        _core.set_isa(before)


@st.composite
def logits(draw, masks=True, max_classes=40):
    """(x, axis, dtype): logits of 1 to 3 dimensions, any of them the class axis, maybe with
    -inf masks (whole rows too). Class counts cover 0, 1 and the tails of every vector width;
    now and then a row longer than one 2048-element block."""
    dtype = draw(DTYPES)
    rows = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5))
    C = draw(st.one_of(st.integers(0, max_classes), st.just(2049))) if max_classes else 0
    if C > max_classes:
        rows = rows[:1]
    ax = draw(st.integers(0, len(rows)))
    shape = (*rows[:ax], C, *rows[ax:])
    x = draw(hnp.arrays(np.float64, shape, elements=VALUES)).astype(dtype)
    if masks and draw(st.booleans()):
        x[draw(hnp.arrays(np.bool_, shape))] = -np.inf
    axis = ax - len(shape) if draw(st.booleans()) else ax  # negative or positive form
    return x, axis, dtype


def _without(shape, axis):
    return tuple(n for i, n in enumerate(shape) if i != axis % len(shape))


def int_labels(draw, x, axis):
    """Valid integer labels for x (x has at least one class, or no rows)."""
    C = x.shape[axis]
    ldtype = draw(st.sampled_from([np.int64, np.int32, np.uint16]))
    return draw(hnp.arrays(ldtype, _without(x.shape, axis), elements=st.integers(0, max(C - 1, 0))))


def targets(draw, x, axis):
    """Non-negative targets: per-row distributions (sum 1, or 0 for an all-zero row), or
    raw values in [0, 1] (rows of mass up to C)."""
    t = draw(hnp.arrays(np.float64, x.shape, elements=st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1e-30]))))
    if draw(st.booleans()):
        s = t.sum(axis=axis, keepdims=True)
        t = np.divide(t, s, out=np.zeros_like(t), where=s > 0)
    return t.astype(x.dtype)


def _row_mass(t, axis):
    return float(t.sum(axis=axis).max(initial=0.0))


def _scaled(tol, k):
    """A gradient tolerance for terms multiplied by k."""
    return dict(rtol=tol["rtol"], atol=tol["atol"] * k)


def _mean_scale(reduction, n_rows):
    return 1.0 / n_rows if (reduction == "mean" and n_rows) else 1.0


@st.composite
def softmax_problems(draw, masks=True):
    """A softmax cross-entropy call: logits, labels (integer or targets), reduction, ISA."""
    x, axis, dtype = draw(logits(masks=masks))
    n_rows = math.prod(_without(x.shape, axis))
    use_targets = draw(st.booleans()) or (x.shape[axis] == 0 and n_rows > 0)
    y = targets(draw, x, axis) if use_targets else int_labels(draw, x, axis)
    return dict(x=x, y=y, axis=axis, dtype=dtype, n_rows=n_rows, targets=use_targets,
                reduction=draw(REDUCTIONS), isa=draw(st.sampled_from(RUNNABLE_ISAS)))


# Found by these properties: the scalar kernels once summed a block's exponentials in
# float32 accumulators of one lane, up to 1024 terms each, so [5, 0 x 2048] drifted past the
# contract (probabilities 1.4e-5 off, the loss 5e-6). Kept as a regression test.
LONG_ROW = np.r_[np.float32(5), np.zeros(2048, np.float32)]


@pytest.mark.parametrize("name", RUNNABLE_ISAS)
def test_long_row_of_equal_logits(name):
    with kernels(name):
        p = xent.softmax(LONG_ROW)
        loss = xent.softmax_cross_entropy(LONG_ROW[None], np.array([0]), reduction="none")
    np.testing.assert_allclose(loss, ref.softmax_xent_labels(LONG_ROW[None], np.array([0]))[0],
                               **LOSS_TOL[np.float32])
    np.testing.assert_allclose(p, ref.softmax(LONG_ROW), **GRAD_TOL[np.float32])


def _reference(p):
    x, y, axis = p["x"], p["y"], p["axis"]
    if p["targets"]:
        return ref.softmax_xent_targets(x, y, axis)
    # the reference moves the class axis last and flattens the rows in C order
    return ref.softmax_xent_labels(x, y, axis)


@SETTINGS
@given(softmax_problems())
def test_softmax_xent_matches_reference_and_never_nan(p):
    x, y, axis, dtype, reduction = p["x"], p["y"], p["axis"], p["dtype"], p["reduction"]
    with kernels(p["isa"]):
        loss, grad = xent.softmax_cross_entropy(x, y, axis=axis, reduction=reduction, return_grad=True)
    rl, rg = _reference(p)
    lt, gt = LOSS_TOL[dtype], GRAD_TOL[dtype]
    k = _mean_scale(reduction, p["n_rows"])
    mass = max(1.0, _row_mass(y, axis)) if p["targets"] else 1.0
    # no NaN anywhere: -inf masks give +inf losses at worst, and gradients stay finite
    assert not np.isnan(loss).any() and not np.isnan(grad).any()
    assert np.isfinite(grad).all()
    assert grad.shape == x.shape and grad.dtype == dtype
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == rl.shape
        assert (loss >= 0).all()
        np.testing.assert_allclose(loss, rl, **lt)
    else:
        assert isinstance(loss, float) and loss >= 0
        # a sum of non-negative per-row results, each within the per-row tolerance
        np.testing.assert_allclose(loss, rl.sum() * k, rtol=lt["rtol"], atol=lt["atol"] * p["n_rows"] * k)
    np.testing.assert_allclose(grad, rg * k, **_scaled(gt, mass * k))


@SETTINGS
@given(softmax_problems(masks=False))
def test_finite_input_gives_finite_loss(p):
    with kernels(p["isa"]):
        loss, grad = xent.softmax_cross_entropy(p["x"], p["y"], axis=p["axis"], reduction=p["reduction"],
                                                return_grad=True)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()


@SETTINGS
@given(softmax_problems())
def test_gradient_rows_sum_to_zero(p):
    """sum_c grad = sum(t) * sum_c p_c - sum(t) = 0, for labels (sum(t) = 1) and targets; a
    fully masked row has a zero gradient."""
    x, axis, dtype = p["x"], p["axis"], p["dtype"]
    with kernels(p["isa"]):
        _, grad = xent.softmax_cross_entropy(x, p["y"], axis=axis, reduction=p["reduction"], return_grad=True)
    C = x.shape[axis]
    mass = _row_mass(p["y"], axis) if p["targets"] else 1.0
    k = _mean_scale(p["reduction"], p["n_rows"])
    # each of the C terms is within a few ulp of its size (<= mass * k), and so is their sum
    bound = 4 * (C + 1) * np.finfo(dtype).eps * max(mass, 1.0) * k
    row_sums = grad.astype(np.float64).sum(axis=axis)
    assert np.abs(row_sums).max(initial=0.0) <= bound


def _shift_error(x, c, xs):
    """Largest change |(x + c) - c - x| that rounding made to a finite logit."""
    fin = np.isfinite(x)
    d = (xs[fin].astype(np.float64) - c) - x[fin].astype(np.float64)
    return float(np.abs(d).max(initial=0.0))


SHIFTS = st.sampled_from([-1e4, -300.0, -1.0, -0.375, 0.5, 7.0, 1000.0, 1e4])


@SETTINGS
@given(softmax_problems(), SHIFTS)
def test_softmax_losses_are_shift_invariant(p, c):
    """Adding c to every logit of a row changes no loss and no gradient; the only change is
    that of rounding x + c, d = max |(x + c) - c - x|, which moves a loss by at most
    2 * sum(t) * d (lse and each z_c move by at most d), a probability p by p * (e^2d - 1),
    and so a gradient term sum(t) * p - t by at most sum(t) * (e^2d - 1)."""
    x, y, axis, dtype = p["x"], p["y"], p["axis"], p["dtype"]
    xs = x + dtype(c)
    d = _shift_error(x, c, xs)
    mass = max(1.0, _row_mass(y, axis)) if p["targets"] else 1.0
    with kernels(p["isa"]):
        l0, g0 = xent.softmax_cross_entropy(x, y, axis=axis, reduction="none", return_grad=True)
        l1, g1 = xent.softmax_cross_entropy(xs, y, axis=axis, reduction="none", return_grad=True)
    lt, gt = LOSS_TOL[dtype], GRAD_TOL[dtype]
    np.testing.assert_allclose(l1, l0, rtol=2 * lt["rtol"], atol=2 * lt["atol"] + 2 * mass * d)
    np.testing.assert_allclose(g1, g0, rtol=2 * gt["rtol"], atol=mass * (2 * gt["atol"] + math.expm1(2 * d)))


@SETTINGS
@given(logits(), SHIFTS, st.sampled_from(RUNNABLE_ISAS))
def test_softmax_is_shift_invariant(problem, c, isa):
    x, axis, dtype = problem
    xs = x + dtype(c)
    d = _shift_error(x, c, xs)
    with kernels(isa):
        p0, p1 = xent.softmax(x, axis=axis), xent.softmax(xs, axis=axis)
        q0, q1 = xent.log_softmax(x, axis=axis), xent.log_softmax(xs, axis=axis)
        if x.ndim:
            s0, s1 = xent.logsumexp(x, axis=axis), xent.logsumexp(xs, axis=axis)
    lt, gt = LOSS_TOL[dtype], GRAD_TOL[dtype]
    np.testing.assert_allclose(p1, p0, rtol=2 * gt["rtol"] + 2 * math.expm1(2 * d), atol=2 * gt["atol"])
    np.testing.assert_allclose(q1, q0, rtol=2 * lt["rtol"], atol=2 * lt["atol"] + 2 * d)
    # lse(x + c) = lse(x) + c, up to the rounding of either side
    np.testing.assert_allclose(s1, (s0.astype(np.float64) + c), rtol=2 * lt["rtol"],
                               atol=2 * lt["atol"] + d + np.finfo(dtype).eps * abs(c))


@SETTINGS
@given(logits(), st.sampled_from(RUNNABLE_ISAS))
def test_softmax_log_softmax_logsumexp_match_reference(problem, isa):
    x, axis, dtype = problem
    with kernels(isa):
        p, q, s = xent.softmax(x, axis=axis), xent.log_softmax(x, axis=axis), xent.logsumexp(x, axis=axis)
    assert p.dtype == dtype and q.dtype == dtype and p.shape == x.shape
    assert not (np.isnan(p).any() or np.isnan(q).any() or np.isnan(s).any())
    assert ((p >= 0) & (p <= 1)).all() and (q <= 0).all()
    lt, gt = LOSS_TOL[dtype], GRAD_TOL[dtype]
    np.testing.assert_allclose(p, ref.softmax(x, axis), **gt)
    np.testing.assert_allclose(q, ref.log_softmax(x, axis), **lt)
    np.testing.assert_allclose(s, ref.logsumexp(x, axis), **lt)
    # rows sum to 1, or to 0 when fully masked (and for 0 classes)
    sums = p.astype(np.float64).sum(axis=axis)
    live = np.isfinite(s)
    bound = 4 * (x.shape[axis] + 1) * np.finfo(dtype).eps
    assert np.all(np.abs(sums[live] - 1) <= bound) and np.all(sums[~live] == 0)


SIGMOID_VALUES = st.one_of(VALUES, st.sampled_from([np.inf, -np.inf]))


@st.composite
def sigmoid_problems(draw):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    z = draw(hnp.arrays(np.float64, shape, elements=SIGMOID_VALUES)).astype(dtype)
    t = draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0]))))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))) if shape else None
    return dict(z=z, t=t.astype(dtype), dtype=dtype, axis=axis, reduction=draw(REDUCTIONS),
                isa=draw(st.sampled_from(RUNNABLE_ISAS)))


@SETTINGS
@given(sigmoid_problems())
def test_sigmoid_loss_nonnegative_gradient_bounded_and_matches_reference(p):
    z, t, axis, dtype, reduction = p["z"], p["t"], p["axis"], p["dtype"], p["reduction"]
    with kernels(p["isa"]):
        loss, grad = xent.sigmoid_cross_entropy(z, t, axis=axis, reduction=reduction, return_grad=True)
    rl, rg = ref.sigmoid_xent(z, t)
    n_terms = z.size if axis is None else math.prod(_without(z.shape, axis))
    k = _mean_scale(reduction, n_terms)
    # loss >= 0 (so never NaN, even for infinite logits) and |grad| <= 1 (times the mean's 1/n)
    assert np.all(np.asarray(loss) >= 0)
    assert np.all(np.abs(grad) <= k) and grad.dtype == dtype and grad.shape == z.shape
    np.testing.assert_allclose(grad, rg * k, **_scaled(GRAD_TOL[dtype], k))
    per = rl if axis is None else rl.sum(axis=axis)
    if reduction == "none":
        # summing over an axis adds at most `len` per-element tolerances
        n = 1 if axis is None else max(z.shape[axis], 1)
        np.testing.assert_allclose(loss, per, rtol=LOSS_TOL[dtype]["rtol"], atol=LOSS_TOL[dtype]["atol"] * n)
    else:
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(loss, per.sum() * k, rtol=LOSS_TOL[dtype]["rtol"],
                                       atol=LOSS_TOL[dtype]["atol"] * max(z.size, 1) * k)


@SETTINGS
@given(sigmoid_problems())
def test_sigmoid_finite_input_gives_finite_loss(p):
    z = np.where(np.isfinite(p["z"]), p["z"], 0).astype(p["dtype"])
    with kernels(p["isa"]):
        loss, grad = xent.sigmoid_cross_entropy(z, p["t"], axis=p["axis"], reduction=p["reduction"],
                                                return_grad=True)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()

