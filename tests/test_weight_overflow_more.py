"""Huge weights (docs/losses.md) in the other losses and wrappers: poly-1, focal, NLL, KL,
sigmoid focal (the result with weights times 2**a and 2**b is exactly the result with
moderate weights times 2**(a+b), or unchanged for the weights of a mean's denominator), the
Dask wrapper (against the in-memory function) and the loss objects' weighted mean."""
from fractions import Fraction

import numpy as np
import pytest

import xent
from weight_ref import DT, HUGE, RED, RTOL, homogeneous, logits, shifts, to_float


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
@pytest.mark.parametrize("mode", ["labels", "targets"])
@pytest.mark.parametrize("kind", ["poly1", "focal", "focal_alpha"])
def test_poly1_focal_homogeneous(dt, red, mode, kind):
    z = logits(dt)
    y = np.array([0, 0, 1, 3, 2])
    lab = y
    if mode == "targets":
        lab = np.full((5, 4), 0.125, dt)
        lab[np.arange(5), y] = 0.625
    cw = np.array([2.0, 1.0, 3.0, 0.5], dt)
    sw = np.array([1.5, 1.0, 2.0, 0.5, 4.0], dt)
    a, b = shifts(dt)

    def f(sa, sb, d):
        kw = dict(weight=(cw * sa).astype(d), sample_weight=(sw * sb).astype(d), reduction=red, return_grad=True)
        zz = z.astype(d)
        ll = lab.astype(d) if mode == "targets" else lab
        if kind == "poly1":
            return xent.poly1_cross_entropy(zz, ll, epsilon=2.0, **kw)
        alpha = np.array([0.25, 0.5, 1.0, 0.75], d) if kind == "focal_alpha" else None
        return xent.softmax_focal_loss(zz, ll, gamma=2.0, alpha=alpha, **kw)

    # targets: the class weights act inside the rows, not in the mean's denominator
    homogeneous(f, dt, red, a, b, a if mode == "targets" else 0)


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
def test_nll_homogeneous(dt, red):
    lp = xent.log_softmax(logits(dt))
    y = np.array([0, 0, 1, 3, 2])
    cw = np.array([2.0, 1.0, 3.0, 0.5], dt)
    sw = np.array([1.5, 1.0, 2.0, 0.5, 4.0], dt)
    a, b = shifts(dt)
    homogeneous(lambda sa, sb, d: xent.nll_loss(lp.astype(d), y, weight=(cw * sa).astype(d),
                                                 sample_weight=(sw * sb).astype(d), reduction=red, return_grad=True),
                 dt, red, a, b)


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
@pytest.mark.parametrize("axis", [None, -1])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_focal_homogeneous(dt, red, axis, alpha):
    z = np.array([[0, 3, -3, 8], [0, 0, 1, -1], [-8, 5, 0, 0]], dt)
    t = np.array([[1, 1, 0, 1], [0.5, 0, 1, 0], [0, 1, 0.5, 1]], dt)
    cw = np.array([2.0, 1.0, 3.0, 0.5], dt)
    sw = np.array([1.5, 1.0, 2.0], dt)
    a, b = shifts(dt)
    def f(sa, sb, d):
        return xent.sigmoid_focal_loss(z.astype(d), t.astype(d), axis=axis, gamma=2.0, alpha=alpha,
                                       weight=(cw * sa).astype(d), sample_weight=(sw * sb).astype(d),
                                       reduction=red, return_grad=True)

    homogeneous(f, dt, red, a, b, a, True)


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
def test_kl_divergence_huge_sample_weight(dt, red):
    lp = xent.log_softmax(logits(dt))
    t = np.full((5, 4), 0.25, dt)
    sw = np.array([1.5, 1.0, 2.0, 0.5, 4.0], dt)
    a = 120 if dt == np.float32 else 1020
    homogeneous(lambda sa, sb, d: xent.kl_divergence(lp.astype(d), t.astype(d), sample_weight=(sw * sa * sb).astype(d),
                                                      reduction=red, return_grad=True), dt, red, a, 0)


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
def test_dask_wrapper_matches_in_memory(dt, red):
    pytest.importorskip("dask")
    import dask.array as da

    import xent.dask as xd

    cwv, swv = HUGE[dt]
    z = logits(dt)
    y = np.array([0, 0, 1, 3, 2])
    cw = np.array([cwv, 1.0, 3.0, cwv / 8], dt)
    sw = np.array([swv, 1.0, swv, 0.5, 2.0], dt)
    want_l, want_g = xent.softmax_cross_entropy(z, y, weight=cw, sample_weight=sw, reduction=red, return_grad=True)
    got_l, got_g = xd.softmax_cross_entropy(da.from_array(z, chunks=2), y, weight=cw, sample_weight=sw, reduction=red,
                                            return_grad=True)
    got_l, got_g = np.asarray(got_l.compute(), dtype=np.float64), got_g.compute()
    assert not np.isnan(got_l).any() and not np.isnan(got_g).any()
    # the Dask gradient of a mean is the "sum" gradient times 1/n: a few ulp of each row's
    # scale apart (p_y - 1 cancels at that scale)
    np.testing.assert_allclose(got_l, np.asarray(want_l, dtype=np.float64), rtol=RTOL[dt])
    fin = np.isfinite(want_g)
    assert np.array_equal(got_g[~fin], want_g[~fin])
    w = [Fraction(float(a)) * Fraction(float(b)) for a, b in zip(cw[y], sw)]  # the scale of each row's terms
    scale = [to_float(v / sum(w)) if red == "mean" else to_float(v) for v in w]
    row_scale = np.array(scale)[:, None] * np.ones_like(want_g, dtype=np.float64)
    err = np.abs(got_g[fin].astype(np.float64) - want_g[fin])
    assert np.all(err <= RTOL[dt] * np.abs(want_g[fin]) + 4 * np.finfo(dt).eps * row_scale[fin])


@pytest.mark.parametrize("dt", DT)
def test_loss_objects_mean_with_huge_sample_weights(dt):
    from xent import losses

    big = float(np.finfo(dt).max) / 2
    sw = np.array([big, big, 1.0], dt)
    raw = np.array([[0, 1, 2], [3, 0, 0], [0, 0, 0]], dt)
    y = np.array([0.0, 1, 2])
    m = losses.MultinomialLoss(n_classes=3)
    l1 = m(y, raw, sample_weight=sw)
    l0 = m(y, raw, sample_weight=np.array([1.0, 1.0, 1.0 / big], dt))  # the same ratios
    assert l1 == pytest.approx(float(l0), rel=RTOL[dt])
    b = losses.BinomialLoss()
    rb, yb = np.array([0.0, 3, -2], dt), np.array([0.0, 1, 1])
    assert b(yb, rb, sample_weight=sw) == pytest.approx(float(b(yb, rb, sample_weight=np.array([1, 1, 1 / big], dt))),
                                                        rel=RTOL[dt])


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
def test_focal_zero_alpha_on_a_masked_label_weighs_zero(dt, red):
    # alpha_y = 0 is a weight of 0: the row's infinite loss (its label's logit is -inf)
    # contributes exactly 0, as a zero class or sample weight does (it gave 0 * inf = NaN)
    # (row 2: fully masked, label 0)
    z = np.array([[-np.inf, 1.0, 2.0], [0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]], dt)
    y = np.array([0, 1, 0])
    loss, grad = xent.softmax_focal_loss(z, y, alpha=np.array([0.0, 1.0, 1.0], dt), reduction=red, return_grad=True)
    ref = xent.softmax_focal_loss(z[1:2], y[1:2], reduction="sum")
    if red == "none":
        assert loss[0] == 0.0 and loss[2] == 0.0 and loss[1] == pytest.approx(ref, rel=RTOL[dt])
    else:
        assert loss == pytest.approx(ref / (3 if red == "mean" else 1), rel=RTOL[dt])
    assert np.all(grad[0] == 0.0) and np.all(grad[2] == 0.0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("c", [3, 300])  # the small-C lanes kernel and the row kernel
def test_tiny_row_scale(dt, c):
    """A row weight so small against the mean's denominator that its gradient scale is
    below the dtype's smallest normal number: the row is computed at a power-of-two scale
    and keeps its digits (a fuzz find: with a z-loss whose lse^2 overflows it made 0 * inf)."""
    rng = np.random.default_rng(5)
    tiny = 1e-310 if dt == np.float64 else 1e-40  # subnormal in the dtype
    z = rng.standard_normal((3, c)).astype(dt)
    y = np.array([0, 1, 2])
    sw = np.array([tiny, 1.0, 1.75], dt)
    loss, g = xent.softmax_cross_entropy(z, y, sample_weight=sw, z_loss=0.5, reduction="mean", return_grad=True)
    z64 = z.astype(np.float64)
    lse = np.log(np.exp(z64 - z64.max(1, keepdims=True)).sum(1)) + z64.max(1)
    p = np.exp(z64 - lse[:, None])
    want = (1.0 + 2 * 0.5 * lse)[:, None] * p
    want[np.arange(3), y] -= 1.0
    want *= (sw.astype(np.float64) / sw.astype(np.float64).sum())[:, None]
    tol = 16 * np.finfo(dt).eps  # the float64 reference's own rounding included
    np.testing.assert_allclose(g.astype(np.float64), want, rtol=tol, atol=2 * np.finfo(dt).smallest_subnormal)
    assert np.abs(g[0]).max() > 0  # the tiny row's gradient did not vanish
    # with the z-loss factor of one row overflowing and its scale rounding to 0 (float64:
    # 5e-324 / 2.75): +-inf or finite, never NaN
    zo = np.array([[np.finfo(dt).max * 0.75, 2, 2], [0, 1, 2], [0, 0, 0]], dt)
    t = np.full((3, 3), 1 / 3, dt)
    sw[0] = np.finfo(dt).smallest_subnormal
    with np.errstate(over="ignore"):
        loss, g = xent.softmax_cross_entropy(zo, t, sample_weight=sw, z_loss=1.0, reduction="mean", return_grad=True)
    assert not np.isnan(g).any() and not np.isnan(loss)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["labels", "targets"])
def test_smoothing_zero_weight_class_at_the_far_extreme(dt, mode):
    """Label smoothing with class weights, logits at both ends of the dtype: m - z overflows
    to inf for a class of weight 0, whose smoothing share is 0, not 0 * inf = NaN (a fuzz
    find, fuzz/regressions/smoothing-zero-weight-class-logits-at-both-extremes.bin).
    The row's loss overflows (+inf, as the exact value does); the gradient is finite."""
    big = np.finfo(dt).max * 0.75
    z = np.array([[-3.0, -big, -3.75, big]], dt)
    w = np.array([1.0, 0.0, 0.0, 0.0], dt)
    y = np.array([0]) if mode == "labels" else np.array([[1.0, 0.0, 0.0, 0.0]], dt)
    with np.errstate(over="ignore"):
        loss, g = xent.softmax_cross_entropy(z, y, weight=w, label_smoothing=0.5, reduction="none", return_grad=True)
    # exact: t = 0.5 onehot(0) + 0.5 / 4 w = [0.625, 0, 0, 0], p = onehot(3) (to within
    # exp(-big)), loss = 0.625 (lse - z_0) = 0.625 (big + 3): finite
    want = Fraction(5, 8) * (Fraction(float(big)) + 3)
    assert loss[0] == pytest.approx(to_float(want), rel=RTOL[dt])
    np.testing.assert_array_equal(g[0], np.array([-0.625, 0.0, 0.0, 0.625], dt))
    # without class weights every class gets eps / 4 (-big counts as unmasked though
    # z - m overflows to -inf): t = [0.625, 0.125, 0.125, 0.125], gradient p - t
    with np.errstate(over="ignore"):
        loss, g = xent.softmax_cross_entropy(z, y, label_smoothing=0.5, reduction="none", return_grad=True)
    np.testing.assert_array_equal(g[0], np.array([-0.625, -0.125, -0.125, 0.875], dt))
    assert not np.isnan(loss).any()


def test_zloss_with_subnormal_class_weight_and_huge_sample_weight():
    """A weighted mean whose sample weight is huge (its weights are rescaled by powers of
    two) and whose class weights are subnormal: the class weights were scaled up to [1/2, 1)
    and the z-loss with them by 2**1063, which overflowed (OverflowError; a fuzz find kept
    in fuzz/regressions/). The mean is invariant under the scaling: 0.925 (lse - z_3) +
    z_loss lse**2 / w_3 here, finite (1e304)."""
    z = np.array([-50.0, -50.0, -50.0, 1e-6])
    w = np.array([0.0, 0.0, 0.0, 1e-320])
    loss = xent.softmax_cross_entropy(
        z, np.int64(3), weight=w, sample_weight=np.float64(1.7e308), z_loss=1e-4, label_smoothing=0.1
    )
    lse = float(np.logaddexp.reduce(z))
    want = 0.925 * (lse - z[3]) + 1e-4 * lse**2 / w[3]
    assert np.isfinite(want) and loss == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("kind", ["plain", "pos_weight", "weight", "focal"])
@pytest.mark.parametrize("red", ["mean", "sum"])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("big", [-3e38, -np.finfo(np.float32).max])
def test_sigmoid_float32_terms_whose_sum_overflows_float32(isa, kind, red, layout, big):
    # Each element loss is finite in float32 (~3e38, up to FLT_MAX), their sum is not: the
    # float32 partial sums (kSumLane terms per lane, scaled by 2**-8, by 2**-9 with AVX-512's
    # 16 lanes) once overflowed to +inf, while a strided call, summed another way, gave the
    # finite float64 total (found by CI's fuzz step as a grad_out=logits call differing from a
    # fresh-buffer one). The reduction is the float64 sum of the per-element losses, on every
    # layout and kernel set.
    n = 600
    z = np.full(n, big, np.float32)
    z[::7] = 1.5  # some ordinary terms among them
    t = np.ones(n, np.float32)
    if layout == "strided":
        z = np.repeat(z, 2)[::2]
        t = np.repeat(t, 2)[::2]
    kw = {"plain": {}, "pos_weight": dict(pos_weight=np.float32(1.0)), "weight": dict(sample_weight=np.ones(n)),
          "focal": {}}[kind]
    fn = xent.sigmoid_focal_loss if kind == "focal" else xent.sigmoid_cross_entropy
    if kind == "focal":
        kw = dict(gamma=0.0)  # the focal kernel, its loss the cross-entropy's
    per = fn(z, t, reduction="none", **kw)
    assert np.isfinite(per).all()
    want = per.astype(np.float64).sum() / (n if red == "mean" else 1)
    got = fn(z, t, reduction=red, **kw)
    assert np.isfinite(got)
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("mode", ["targets", "smoothing"])
def test_gradient_factor_beyond_float32_keeps_the_target_term(mode):
    """A row's gradient factor (here 1 + 2 z_loss lse ~ 4e38) beyond float32's range is
    applied in double (row_scale_exps' wide path); the target's term (soft targets) or the
    smoothing's term is subtracted after it, from the same finite products: exp(-87) ~ 1.6e-38
    times 4e38 leaves terms of 6-20 where t's ~1/300 still shows (5e-4 of them, against the
    float32 rounding of z - max, 87 * 2**-24 relative)."""
    rng = np.random.default_rng(3)
    c = 300  # the row kernels (rows in lanes stop at 128 float32 classes)
    z = np.full((2, c), 13.0, np.float32)
    z[:, 0] = 100.0
    z[1, 1:] += rng.random(c - 1).astype(np.float32)
    zl = 2e36
    if mode == "targets":
        t = rng.random((2, c)).astype(np.float32)
        t /= t.sum(1, keepdims=True)
        with np.errstate(over="ignore"):
            _, g = xent.softmax_cross_entropy(z, t, z_loss=zl, reduction="sum", return_grad=True)
        tt = t.astype(np.longdouble)
    else:
        y = np.array([0, 5])
        with np.errstate(over="ignore"):
            _, g = xent.softmax_cross_entropy(z, y, z_loss=zl, label_smoothing=0.1, reduction="sum", return_grad=True)
        tt = np.full((2, c), 0.1 / c, np.longdouble)
        tt[np.arange(2), y] += 0.9
    zz = z.astype(np.longdouble)
    m = zz.max(1, keepdims=True)
    lse = m + np.log(np.exp(zz - m).sum(1, keepdims=True))
    want = (tt.sum(1, keepdims=True) + 2 * np.longdouble(zl) * lse) * np.exp(zz - lse) - tt
    fin = np.abs(want) < np.finfo(np.float32).max
    assert fin.sum() == 2 * (c - 1) and np.all(np.isinf(g[~fin]))
    assert np.all(np.abs(want[fin]) > 1) and np.all(np.abs(want[fin]) < 100)
    np.testing.assert_allclose(g[fin].astype(np.float64), want[fin].astype(np.float64), rtol=1e-5)
