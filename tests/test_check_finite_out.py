"""check_finite=, out= and grad_out= on the softmax-family functions (SEMANTICS "Details")."""
import numpy as np
import pytest

import xent
from xent._validate import check_finite

LOSSES = {
    "ce": lambda z, y, **k: xent.softmax_cross_entropy(z, y, **k),
    "ce_smooth_w": lambda z, y, **k: xent.softmax_cross_entropy(
        z, y, label_smoothing=0.2, weight=np.linspace(0.5, 2, z.shape[-1]), z_loss=1e-2, **k
    ),
    "ce_cap": lambda z, y, **k: xent.softmax_cross_entropy(z, y, softcap=2.5, **k),
    "poly1": lambda z, y, **k: xent.poly1_cross_entropy(z, y, **k),
    "focal": lambda z, y, **k: xent.softmax_focal_loss(z, y, alpha=0.3, **k),
    "nll": lambda z, y, **k: xent.nll_loss(z, y, **k),
}


def _data(rng, shape=(6, 4, 5), dtype=np.float64):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    y = rng.integers(0, shape[-1], shape[:-1])
    t = rng.random(shape).astype(dtype)
    t /= t.sum(-1, keepdims=True)
    return z, y, t


# ---- check_finite ----------------------------------------------------------------------


def test_helper_reports_first_position_in_c_order():
    a = np.zeros((3, 4, 5))
    a[2, 1, 0] = np.inf
    a[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"x has the value nan at index \(1, 3, 4\)"):
        check_finite(a, "x")
    # a transposed view: positions are of the view's logical shape
    with pytest.raises(ValueError, match=r"the value inf at index \(0, 1, 2\)"):  # a[2, 1, 0]
        check_finite(a.T, "x")
    b = np.zeros(5)
    b[3] = -np.inf
    check_finite(b, "b")  # -inf is a mask
    with pytest.raises(ValueError, match=r"b has the value -inf at index \(3,\)"):
        check_finite(b, "b", allow_neginf=False)
    check_finite(np.zeros((0, 3)), "e")
    with pytest.raises(ValueError, match=r"at index \(\)"):
        check_finite(np.float32(np.nan), "s")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_raise_on_nan_and_posinf(rng, name, bad):
    z, y, _ = _data(rng)
    z[4, 2, 3] = bad
    with pytest.raises(ValueError, match=r"(logits|log_probs) has the value .* at index \(4, 2, 3\)"):
        LOSSES[name](z, y, check_finite=True)
    # off by default: the bad value reaches its own row only
    loss = LOSSES[name](z, y, reduction="none")
    # (nll reads its label's entry only; a soft cap maps +inf to the cap, a finite logit)
    if not (name == "nll" or (name == "ce_cap" and bad == np.inf)):
        assert not np.isfinite(loss[4, 2])
    assert np.isfinite(np.delete(loss.ravel(), 4 * 4 + 2)).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_neginf_is_a_mask_not_an_error(rng, name):
    z, y, _ = _data(rng)
    z[..., 0] = -np.inf
    y = np.maximum(y, 1)
    a = LOSSES[name](z, y, check_finite=True, reduction="none")
    b = LOSSES[name](z, y, reduction="none")
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()


@pytest.mark.parametrize("fn", [xent.logsumexp, xent.softmax, xent.log_softmax])
def test_normalizers_check_finite(rng, fn):
    z, _, _ = _data(rng)
    z[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x has the value nan at index \(0, 1, 2\)"):
        fn(z, axis=1, check_finite=True)
    z[0, 1, 2] = -np.inf
    np.testing.assert_array_equal(fn(z, axis=1, check_finite=True), fn(z, axis=1))


def test_targets_and_kl_checked(rng):
    z, _, t = _data(rng)
    t[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"labels has the value nan at index \(1, 1, 1\)"):
        xent.softmax_cross_entropy(z, t, check_finite=True)
    t[1, 1, 1] = -np.inf  # a target is not a mask
    with pytest.raises(ValueError, match=r"labels has the value -inf"):
        xent.poly1_cross_entropy(z, t, check_finite=True)
    lp = xent.log_softmax(z)
    t[1, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"target has the value inf at index \(1, 1, 1\)"):
        xent.kl_divergence(lp, t, check_finite=True)
    lt = np.log(np.abs(t))
    lt[1, 1, 1] = -np.inf  # a log target of -inf is log 0: fine
    xent.kl_divergence(lp, lt, log_target=True, check_finite=True)
    lp[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"log_pred has the value nan at index \(0, 0, 0\)"):
        xent.kl_divergence(lp, lt, log_target=True, check_finite=True)


# ---- out= -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LOSSES))
def test_out_receives_the_per_row_losses(rng, name, dtype):
    z, y, _ = _data(rng, dtype=dtype)
    ref = LOSSES[name](z, y, reduction="none")
    out = np.full(y.shape, 7.0, dtype=dtype)
    got = LOSSES[name](z, y, reduction="none", out=out)
    assert got is out
    np.testing.assert_array_equal(out, ref)


def test_out_errors(rng):
    z, y, _ = _data(rng)
    with pytest.raises(ValueError, match="shape"):
        xent.softmax_cross_entropy(z, y, reduction="none", out=np.empty((6, 5)))
    with pytest.raises(TypeError, match="dtype"):
        xent.softmax_cross_entropy(z, y, reduction="none", out=np.empty((6, 4), np.float32))
    with pytest.raises(ValueError, match="reduction='none'"):
        xent.softmax_cross_entropy(z, y, reduction="mean", out=np.empty((6, 4)))
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        xent.softmax_cross_entropy(z, y, reduction="none", out=[0.0] * 24)
    ro = np.empty((6, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        xent.softmax_cross_entropy(z, y, reduction="none", out=ro)
    with pytest.raises(ValueError, match="overlaps"):
        xent.softmax_cross_entropy(z, y, reduction="none", out=z[..., 0])


def test_out_may_be_the_sample_weight_array(rng):
    z, y, _ = _data(rng)
    sw = rng.random(y.shape)
    ref = xent.softmax_cross_entropy(z, y, sample_weight=sw, reduction="none")
    got = xent.softmax_cross_entropy(z, y, sample_weight=sw, reduction="none", out=sw)
    assert got is sw
    np.testing.assert_array_equal(sw, ref)


# ---- grad_out= ----------------------------------------------------------------------------

ALIAS_CASES = [
    ("ce", "y", {}),
    ("ce", "t", {}),
    ("ce", "y", dict(label_smoothing=0.3)),
    ("ce", "t", dict(label_smoothing=0.3, weight=np.linspace(0.5, 2, 5))),
    ("ce", "y", dict(label_smoothing=0.3, weight=np.linspace(0.5, 2, 5), z_loss=0.01)),
    ("ce", "y", dict(softcap=3.0, sample_weight=np.linspace(0.1, 1, 24).reshape(6, 4))),
    ("ce", "t", dict(softcap=3.0, label_smoothing=0.1)),
    ("poly1", "y", {}),
    ("poly1", "t", dict(weight=np.linspace(0.5, 2, 5))),
    ("focal", "y", dict(gamma=1.5, alpha=np.linspace(0.1, 1, 5))),
    ("focal", "t", dict(gamma=2.0, softcap=4.0)),
    ("nll", "y", dict(ignore_index=2)),
    ("kl", "t", {}),
    ("kl_log", "t", {}),
]
FNS = {
    "ce": xent.softmax_cross_entropy,
    "poly1": xent.poly1_cross_entropy,
    "focal": xent.softmax_focal_loss,
    "nll": xent.nll_loss,
    "kl": xent.kl_divergence,
    "kl_log": lambda z, t, **k: xent.kl_divergence(z, np.log(t), log_target=True, **k),
}


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn, lab, kw", ALIAS_CASES)
def test_grad_out_may_be_the_logits(isa, rng, fn, lab, kw, dtype, axis):
    z, y, t = _data(rng, dtype=dtype)
    if axis == 1:  # the class axis in the middle: rows are gathered and scattered
        z, t = np.ascontiguousarray(np.moveaxis(z, -1, 1)), np.ascontiguousarray(np.moveaxis(t, -1, 1))
    if fn in ("nll", "kl", "kl_log"):
        z = xent.log_softmax(z, axis=axis)
    labels = y if lab == "y" else t
    z0 = z.copy()
    loss, grad = FNS[fn](z, labels, axis=axis, return_grad=True, reduction="sum", **kw)
    np.testing.assert_array_equal(z, z0)  # not modified without grad_out
    buf = np.empty_like(z)
    loss_b, grad_b = FNS[fn](z, labels, axis=axis, return_grad=True, reduction="sum", grad_out=buf, **kw)
    assert grad_b is buf
    zz = z.copy()
    loss_a, grad_a = FNS[fn](zz, labels, axis=axis, return_grad=True, reduction="sum", grad_out=zz, **kw)
    assert grad_a is zz
    assert loss_a == loss_b == loss
    np.testing.assert_array_equal(grad_b, grad)
    np.testing.assert_array_equal(grad_a, grad)


def test_grad_out_errors(rng):
    z, y, t = _data(rng)
    with pytest.raises(ValueError, match="return_grad=True"):
        xent.softmax_cross_entropy(z, y, grad_out=np.empty_like(z))
    with pytest.raises(ValueError, match="shape"):
        xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=np.empty((6, 4, 4)))
    with pytest.raises(TypeError, match="dtype"):
        xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=np.empty(z.shape, np.float32))
    with pytest.raises(ValueError, match="targets or the weights"):
        xent.softmax_cross_entropy(z, t, return_grad=True, grad_out=t)
    with pytest.raises(ValueError, match="targets or the weights"):
        xent.kl_divergence(z, t, return_grad=True, grad_out=t)
    with pytest.raises(ValueError, match="overlaps"):
        xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=np.moveaxis(z, 0, 0)[::-1])
    big = np.empty((7, 4, 5))
    with pytest.raises(ValueError, match="overlaps out"):
        xent.softmax_cross_entropy(
            z, y, reduction="none", return_grad=True, grad_out=big[:6], out=big.reshape(-1)[:24].reshape(6, 4)
        )
