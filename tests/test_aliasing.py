"""Output buffers placed over input arrays: every function that takes ``out=`` /
``grad_out=`` (or scikit-learn's ``*_out=``), every buffer over every input array, exactly
(same memory, shape and strides where the dtypes allow) and shifted by one element and by
one row. Each call must either raise ValueError (the buffer overlaps an input it may not)
or give exactly the results of a call with fresh buffers. Before these checks a gradient
written over the integer labels changed the labels of later rows: garbage class indices,
and a segmentation fault."""
import numpy as np
import pytest

import xent
import xent.losses as L

N, C = 40, 6
_rng = np.random.default_rng(20261122)
Z = _rng.standard_normal((N, C))
Y = _rng.integers(0, C, N)
T = _rng.random((N, C))
T /= T.sum(1, keepdims=True)
TB = (_rng.random((N, C)) < 0.3).astype(float)
SW = _rng.random(N) + 0.5
V = _rng.standard_normal((N, C))
YB = (_rng.random(N) < 0.5).astype(float)
ZB = _rng.standard_normal(N)
R = dict(reduction="none", return_grad=True)
_mult, _bin = L.MultinomialLoss(), L.BinomialLoss()

# name: (function, keyword arguments, its buffers)
CASES = {
    "xent_labels": (xent.softmax_cross_entropy, dict(logits=Z, labels=Y, sample_weight=SW, **R), ["out", "grad_out"]),
    "xent_targets": (xent.softmax_cross_entropy, dict(logits=Z, labels=T, **R), ["out", "grad_out"]),
    "xent_smoothed": (
        xent.softmax_cross_entropy, dict(logits=Z, labels=Y, label_smoothing=0.1, **R), ["out", "grad_out"]
    ),
    "xent_weighted": (
        xent.softmax_cross_entropy, dict(logits=Z, labels=Y, weight=np.arange(1.0, C + 1), **R), ["out", "grad_out"]
    ),
    "nll": (xent.nll_loss, dict(log_probs=Z, labels=Y, **R), ["out", "grad_out"]),
    "focal": (xent.softmax_focal_loss, dict(logits=Z, labels=Y, **R), ["out", "grad_out"]),
    "poly1": (xent.poly1_cross_entropy, dict(logits=Z, labels=Y, **R), ["out", "grad_out"]),
    "kl": (xent.kl_divergence, dict(log_pred=Z, target=T, **R), ["out", "grad_out"]),
    "sigmoid": (xent.sigmoid_cross_entropy, dict(logits=Z, targets=TB, **R), ["out", "grad_out"]),
    "sigmoid_weighted": (
        xent.sigmoid_cross_entropy, dict(logits=Z, targets=TB, weight=np.arange(1.0, C + 1), sample_weight=SW, **R),
        ["out", "grad_out"],
    ),
    "sigmoid_focal": (xent.sigmoid_focal_loss, dict(logits=Z, targets=TB, **R), ["out", "grad_out"]),
    "sigmoid_hessian": (xent.sigmoid_hessian, dict(logits=Z, targets=TB, return_grad=True), ["out", "grad_out"]),
    "softmax_hessian_diag": (
        xent.softmax_hessian_diag, dict(logits=Z, labels=Y, sample_weight=SW, return_grad=True), ["out", "grad_out"]
    ),
    "softmax_hvp": (xent.softmax_hvp, dict(logits=Z, v=V, sample_weight=SW), ["out"]),
    "softmax": (xent.softmax, dict(x=Z), ["out"]),
    "log_softmax": (xent.log_softmax, dict(x=Z), ["out"]),
    "softmax_capped": (xent.softmax, dict(x=Z, softcap=3.0), ["out"]),
    "log_logistic": (xent.log_logistic, dict(x=Z), ["out"]),
    "multinomial.loss_gradient": (
        _mult.loss_gradient, dict(y_true=Y.astype(float), raw_prediction=Z, sample_weight=SW),
        ["loss_out", "gradient_out"],
    ),
    "multinomial.gradient_hessian": (
        _mult.gradient_hessian, dict(y_true=Y.astype(float), raw_prediction=Z, sample_weight=SW),
        ["gradient_out", "hessian_out"],
    ),
    "multinomial.gradient_proba": (
        _mult.gradient_proba, dict(y_true=Y.astype(float), raw_prediction=Z, sample_weight=SW),
        ["gradient_out", "proba_out"],
    ),
    "binomial.loss_gradient": (
        _bin.loss_gradient, dict(y_true=YB, raw_prediction=ZB, sample_weight=SW), ["loss_out", "gradient_out"]
    ),
    "binomial.gradient_hessian": (
        _bin.gradient_hessian, dict(y_true=YB, raw_prediction=ZB, sample_weight=SW), ["gradient_out", "hessian_out"]
    ),
    "binomial.gradient": (_bin.gradient, dict(y_true=YB, raw_prediction=ZB, sample_weight=SW), ["gradient_out"]),
    "binomial.loss": (_bin.loss, dict(y_true=YB, raw_prediction=ZB, sample_weight=SW), ["loss_out"]),
}


def _fresh(kw):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}


def _results(r):
    return [np.array(x, copy=True) for x in (r if isinstance(r, tuple) else (r,))]


PARAMS = [
    (name, buf, inp, shift)
    for name, (_, kw, bufs) in CASES.items()
    for buf in bufs
    for inp, x in kw.items()
    if isinstance(x, np.ndarray)
    for shift in ("exact", "element", "row")
]


@pytest.mark.parametrize("name,buf,inp,shift", PARAMS)
def test_buffer_over_input_raises_or_is_exact(name, buf, inp, shift):
    fn, kw, bufs = CASES[name]
    want = _results(fn(**_fresh(kw)))
    like = want[bufs.index(buf)] if len(want) == len(bufs) else want[0]
    x = kw[inp]
    step = {"exact": 0, "element": x.itemsize, "row": x.strides[0]}[shift]
    nbytes = max(x.nbytes, like.nbytes) + step
    base = np.zeros(nbytes + 64, np.uint8)
    xin = base[: x.nbytes].view(x.dtype).reshape(x.shape)
    xin[...] = x
    out = base[step : step + like.nbytes].view(like.dtype).reshape(like.shape)
    args = _fresh(kw)
    args[inp], args[buf] = xin, out
    try:
        got = _results(fn(**args))
    except ValueError as e:
        assert "overlap" in str(e), e
        # an exact alias is refused only where the function may not compute over it
        return
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", ["xent_labels", "nll", "focal", "poly1", "softmax_hessian_diag"])
def test_gradient_over_the_labels_raises(name):
    fn, kw, _ = CASES[name]
    base = np.zeros(N * C, np.int64)
    y = base[:N]
    y[:] = Y
    args = _fresh(kw)
    args["labels"], args["grad_out"] = y, base.view(np.float64).reshape(N, C)
    with pytest.raises(ValueError, match="grad_out overlaps"):
        fn(**args)
    np.testing.assert_array_equal(y, Y)


def test_sklearn_outputs_over_inputs_raise():
    base = np.zeros(N + 1)
    z, g = base[:N], base[1:]
    z[:] = ZB
    with pytest.raises(ValueError, match="gradient_out overlaps an input"):
        _bin.gradient(YB, z, gradient_out=g)
    sw = SW.copy()
    with pytest.raises(ValueError, match="loss_out overlaps an input"):
        _bin.loss(YB, ZB, sample_weight=sw, loss_out=sw)
    zm = Z.copy()
    with pytest.raises(ValueError, match="gradient_out overlaps an input"):
        _mult.gradient_proba(Y.astype(float), zm, gradient_out=zm)
    # the raw prediction itself is allowed where the kernel reads each value before writing it
    g, h = _mult.gradient_hessian(Y.astype(float), zm, gradient_out=zm)
    assert g is zm
    want_g, want_h = _mult.gradient_hessian(Y.astype(float), Z)
    np.testing.assert_array_equal(g, want_g)
    np.testing.assert_array_equal(h, want_h)
