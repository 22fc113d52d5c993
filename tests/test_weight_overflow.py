"""Weights whose products overflow the dtype (docs/losses.md, "Huge weights"): never NaN for
finite input, +-inf only where the exact result overflows, and agreement with an exact
reference (Python fractions over float64 terms, tests/weight_ref.py) where it does not.
Class weight 1e264 times sample weight 1e300 in float64, 1e30 times 1e20 in float32."""
import numpy as np
import pytest

import xent
from weight_ref import DT, HUGE, RED, RTOL, close, logits, ref_sigmoid, ref_xent


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
@pytest.mark.parametrize("mode", ["labels", "targets"])
@pytest.mark.parametrize("opt", ["plain", "z_loss", "smoothing", "both"])
@pytest.mark.parametrize("which", ["cw", "sw", "both"])
def test_softmax_xent_exact(dt, red, mode, opt, which):
    cwv, swv = HUGE[dt]
    z = logits(dt)
    y = np.array([0, 0, 1, 3, 2])
    t = None
    if mode == "targets":
        t = np.zeros((5, 4), dt)
        t[np.arange(5), y] = 0.75
        t[:, 1] += 0.25
    cw = np.array([cwv, 1.0, 3.0, cwv / 8], dt) if which != "sw" else None
    sw = np.array([swv, 1.0, swv, 0.5, 2.0], dt) if which != "cw" else None
    zl = 1e-3 if opt in ("z_loss", "both") else 0.0
    eps = 0.1 if opt in ("smoothing", "both") else 0.0
    labels = y if t is None else t
    loss, grad = xent.softmax_cross_entropy(z, labels, weight=cw, sample_weight=sw, z_loss=zl, label_smoothing=eps,
                                            reduction=red, return_grad=True)
    lref, lb, gref, gb = ref_xent(z, y if t is None else None, t, cw, sw, zl, eps, red)
    close(loss, lref, lb, dt, "loss", None if red == "none" else np.float64)  # sums: Python floats
    close(grad, gref, gb, dt, "grad")


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("red", RED)
@pytest.mark.parametrize("axis", [None, -1])
@pytest.mark.parametrize("opt", ["plain", "pos_weight", "smoothing"])
@pytest.mark.parametrize("which", ["cw", "sw", "both"])
def test_sigmoid_xent_exact(dt, red, axis, opt, which):
    cwv, swv = HUGE[dt]
    z = np.array([[0, 30, -30, 80], [0, 0, 1, -1], [-80, 5, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]], dt)
    t = np.array([[1, 1, 0, 1], [0.5, 0, 1, 0], [0, 1, 0.5, 1], [1, 0, 0, 1], [0.5, 0.5, 0.5, 0.5]], dt)
    cw = np.array([cwv, 1.0, 2.0, cwv], dt) if which != "sw" else None
    sw = np.array([swv, 1.0, swv, 0.5, 3.0], dt) if which != "cw" else None
    pw = np.array([3.0, 1.0, 0.5, cwv if which == "sw" else 2.0], dt) if opt == "pos_weight" else None
    eps = 0.1 if opt == "smoothing" else 0.0
    loss, grad = xent.sigmoid_cross_entropy(z, t, axis=axis, weight=cw, pos_weight=pw, sample_weight=sw,
                                            label_smoothing=eps, reduction=red, return_grad=True)
    lref, lb, gref, gb = ref_sigmoid(z, t, cw, pw, sw, eps, axis, red)
    # the sum adds the weighted terms of the dtype (in float64): terms beyond its range are +inf
    close(loss, lref, lb, dt, "loss", np.float64 if red == "mean" else None)
    close(grad, gref, gb, dt, "grad")


@pytest.mark.parametrize("dt", DT)
def test_zero_loss_times_huge_weight_is_zero(dt):
    # a row whose loss is exactly 0 (a certain label) stays 0 under a weight product that
    # overflows: not inf * 0 = NaN, and not inf
    cwv, swv = HUGE[dt]
    z = np.array([[0.0, -1e4], [0.0, 0.0]], dt)
    loss, grad = xent.softmax_cross_entropy(z, np.array([0, 0]), weight=np.array([cwv, 1.0], dt),
                                            sample_weight=np.array([swv, 1.0], dt), reduction="none",
                                            return_grad=True)
    assert loss[0] == 0.0 and grad[0, 0] == 0.0 and grad[0, 1] == 0.0
    zs = np.array([[1e4, -1e4]], dt)  # exp(-1e4) is 0: loss and gradient exactly 0
    ls, gs = xent.sigmoid_cross_entropy(zs, np.array([[1.0, 0.0]], dt), weight=np.array([cwv, cwv], dt),
                                        sample_weight=np.array([swv], dt), axis=-1, reduction="none",
                                        return_grad=True)
    assert ls[0] == 0.0 and np.all(gs == 0.0)


@pytest.mark.parametrize("dt", DT)
def test_mean_with_huge_weights_equals_moderate_weights(dt):
    # "mean" depends on ratios of weights only: 1e264 x 1e300 gives the same as 1 x 1
    cwv, swv = HUGE[dt]
    z = logits(dt)
    y = np.array([0, 0, 1, 3, 2])
    l0, g0 = xent.softmax_cross_entropy(z, y, weight=np.array([1, 1, 1, 1], dt), sample_weight=np.ones(5, dt),
                                        return_grad=True)
    l1, g1 = xent.softmax_cross_entropy(z, y, weight=np.full(4, cwv, dt), sample_weight=np.full(5, swv, dt),
                                        return_grad=True)
    assert l1 == pytest.approx(l0, rel=RTOL[dt])
    np.testing.assert_allclose(g1, g0, rtol=RTOL[dt], atol=0)
