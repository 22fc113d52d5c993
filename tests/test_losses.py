"""xent.losses.MultinomialLoss / BinomialLoss against scikit-learn's HalfMultinomialLoss /
HalfBinomialLoss: every method, float32 and float64, with and without sample weights and
*_out arrays, n_threads 1 and 2; and against the extended-precision references."""
import numpy as np
import pytest

import reference as ref
from xent.losses import BinomialLoss, MultinomialLoss

DTYPES = [np.float32, np.float64]
# scikit-learn's float32 path rounds p and 1 - p in float32 (and its sum of exps, too)
SK_TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
METHODS = ["loss", "gradient", "loss_gradient", "gradient_hessian"]
OUTS = {"loss": ("loss_out",), "gradient": ("gradient_out",), "loss_gradient": ("loss_out", "gradient_out"),
        "gradient_hessian": ("gradient_out", "hessian_out"), "gradient_proba": ("gradient_out", "proba_out")}


def sk_loss(kind, n_classes):
    loss = pytest.importorskip("sklearn._loss.loss")
    return loss.HalfMultinomialLoss(n_classes=n_classes) if kind == "multi" else loss.HalfBinomialLoss()


def data(rng, kind, n, K, dtype, order="C"):
    if kind == "multi":
        raw = np.asarray(rng.standard_normal((n, K)) * 3, dtype=dtype, order=order)
        y = rng.integers(0, K, n).astype(dtype)
    else:
        raw = (rng.standard_normal(n) * 4).astype(dtype)
        y = rng.integers(0, 2, n).astype(dtype)
        y[::5] = rng.random(y[::5].shape)  # y in [0, 1] (logistic regression on proportions)
    sw = rng.random(n).astype(dtype) * 2
    return y, raw, sw


def as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


@pytest.mark.parametrize("kind", ["multi", "binary"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_out", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_matches_sklearn(rng, kind, dtype, weighted, with_out, n_threads):
    K = 5
    sk = sk_loss(kind, K)
    ours = MultinomialLoss(n_classes=K) if kind == "multi" else BinomialLoss()
    y, raw, sw = data(rng, kind, 300, K, dtype)
    sw = sw if weighted else None
    methods = METHODS + (["gradient_proba"] if kind == "multi" else [])
    for m in methods:
        kw = dict(sample_weight=sw, n_threads=n_threads)
        okw = {}
        if with_out:
            for name in OUTS[m]:
                okw[name] = np.full(y.shape if name == "loss_out" else raw.shape, np.nan, dtype=dtype)
        expected = as_tuple(getattr(sk, m)(y, raw, **kw))
        got = as_tuple(getattr(ours, m)(y, raw, **kw, **okw))
        assert len(got) == len(expected)
        for g, e, name in zip(got, expected, OUTS[m]):
            assert g.shape == e.shape and g.dtype == e.dtype, (m, name)
            np.testing.assert_allclose(g, e, **SK_TOL[dtype], err_msg=f"{m} {name}")
            if with_out:
                assert g is okw[name], (m, name)
    e = sk(y, raw, sample_weight=sw, n_threads=n_threads)
    g = ours(y, raw, sample_weight=sw, n_threads=n_threads)
    assert type(g) is type(e)
    np.testing.assert_allclose(g, e, rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_multinomial_gradient_hessian_matches_sklearn(rng, dtype, weighted):
    sk = sk_loss("multi", 4)
    y, raw, sw = data(rng, "multi", 500, 4, dtype, order="F")  # F order: scikit-learn's X @ coef.T
    sw = sw if weighted else None
    g, h = MultinomialLoss(n_classes=4).gradient_hessian(y, raw, sample_weight=sw)
    ge, he = sk.gradient_hessian(y, raw, sample_weight=sw)
    np.testing.assert_allclose(g, ge, **SK_TOL[dtype])
    np.testing.assert_allclose(h, he, **SK_TOL[dtype])
    assert g.flags.f_contiguous == ge.flags.f_contiguous  # np.empty_like(raw_prediction)


def _xent_row(z, y):
    """lse(z) - z[y] in long double as (m - z[y]) + log1p(sum of exp(z - m) over the other
    classes): keeps its digits for confident rows, where log(s) with s = 1 + 1e-16 would not."""
    z = z.astype(np.longdouble)
    r = int(np.argmax(z))
    rest = np.exp(np.delete(z, r) - z[r]).sum()
    return float((z[r] - z[y]) + np.log1p(rest))


def test_float64_against_reference(rng):
    y, raw, sw = data(rng, "multi", 200, 7, np.float64)
    raw[:10, 0] += 40  # confident rows
    raw[10:20, 3] = -np.inf  # masked class (y != 3 there)
    y[10:20] = np.where(y[10:20] == 3, 2, y[10:20])
    loss, grad = MultinomialLoss(n_classes=7).loss_gradient(y, raw, sample_weight=sw)
    _, rg = ref.softmax_xent_labels(raw, y.astype(int))
    rl = np.array([_xent_row(r, int(k)) for r, k in zip(raw, y)])
    np.testing.assert_allclose(loss, rl * sw, rtol=1e-13)
    np.testing.assert_allclose(grad, rg * sw[:, None], rtol=1e-13, atol=1e-16)
    yb, zb, swb = data(rng, "binary", 300, 2, np.float64)
    zb[:3] = [800, -800, 0]
    loss, grad = BinomialLoss().loss_gradient(yb, zb, sample_weight=swb)
    rl, rg = ref.sigmoid_xent(zb, yb)
    np.testing.assert_allclose(loss, rl * swb, rtol=1e-13)
    np.testing.assert_allclose(grad, rg * swb, rtol=1e-13, atol=1e-16)


def test_binomial_column_shape_and_views(rng):
    sk = sk_loss("binary", 2)
    y, raw, sw = data(rng, "binary", 50, 2, np.float64)
    col = raw[:, None]
    for m in METHODS:
        got, exp = as_tuple(getattr(BinomialLoss(), m)(y, col, sw)), as_tuple(getattr(sk, m)(y, col, sw))
        for g, e in zip(got, exp):
            assert g.shape == e.shape == (50,)
            np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15)
    gout = np.empty((50, 1))
    g = BinomialLoss().gradient(y, col, sw, gradient_out=gout)
    assert g.shape == (50,) and np.shares_memory(g, gout)
    np.testing.assert_array_equal(gout[:, 0], g)
    p, pe = BinomialLoss().predict_proba(col), sk.predict_proba(col)
    assert p.shape == pe.shape == (50, 2)
    np.testing.assert_allclose(p, pe, rtol=1e-13, atol=1e-16)
    # the first column keeps its digits where p ~ 1
    p = BinomialLoss().predict_proba(np.array([40.0, -40.0]))
    np.testing.assert_allclose(p[0, 0], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-14)


@pytest.mark.parametrize("in_dtype, out_dtype", [(np.float64, np.float32), (np.float32, np.float64)])
def test_mixed_output_dtypes(rng, in_dtype, out_dtype):
    # scikit-learn's gradient boosting writes float32 gradients from float64 raw predictions
    for kind in ("multi", "binary"):
        sk = sk_loss(kind, 3)
        ours = MultinomialLoss(n_classes=3) if kind == "multi" else BinomialLoss()
        y, raw, sw = data(rng, kind, 80, 3, in_dtype)
        go, ho = np.empty(raw.shape, out_dtype), np.empty(raw.shape, out_dtype)
        g, h = ours.gradient_hessian(y, raw, sw, gradient_out=go, hessian_out=ho)
        ge, he = sk.gradient_hessian(y, raw, sw, gradient_out=np.empty_like(go), hessian_out=np.empty_like(ho))
        assert g is go and h is ho
        np.testing.assert_allclose(g, ge, **SK_TOL[np.float32])
        np.testing.assert_allclose(h, he, **SK_TOL[np.float32])
        lo = np.empty(80, out_dtype)
        loss, grad = ours.loss_gradient(y, raw, sw, loss_out=lo)
        assert loss is lo and grad.dtype == out_dtype  # the missing output takes the given one's dtype
        np.testing.assert_allclose(loss, sk.loss(y, raw, sw), **SK_TOL[np.float32])


def test_linear_model_loss_drop_in(rng):
    # scikit-learn's own LinearModelLoss (LogisticRegression's objective) on xent's loss objects
    llm = pytest.importorskip("sklearn.linear_model._linear_loss")
    skl = pytest.importorskip("sklearn._loss.loss")
    X = rng.standard_normal((120, 6))
    y = rng.integers(0, 3, 120).astype(np.float64)
    sw = rng.random(120)
    for ours, theirs, yy in [
        (MultinomialLoss(n_classes=3), skl.HalfMultinomialLoss(n_classes=3), y),
        (BinomialLoss(), skl.HalfBinomialLoss(), (y == 1).astype(np.float64)),
    ]:
        a = llm.LinearModelLoss(base_loss=ours, fit_intercept=True)
        b = llm.LinearModelLoss(base_loss=theirs, fit_intercept=True)
        coef = rng.standard_normal(a.init_zero_coef(X).size)
        la, ga = a.loss_gradient(coef, X, yy, sw, l2_reg_strength=0.1)
        lb, gb = b.loss_gradient(coef, X, yy, sw, l2_reg_strength=0.1)
        np.testing.assert_allclose(la, lb, rtol=1e-13)
        np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-14)
        ga, hpa = a.gradient_hessian_product(coef, X, yy, sw, l2_reg_strength=0.1)
        gb, hpb = b.gradient_hessian_product(coef, X, yy, sw, l2_reg_strength=0.1)
        s = rng.standard_normal(coef.shape)
        np.testing.assert_allclose(hpa(s), hpb(s), rtol=1e-12, atol=1e-14)


def test_helpers_match_sklearn(rng):
    skm, skb = sk_loss("multi", 4), sk_loss("binary", 2)
    m, b = MultinomialLoss(n_classes=4), BinomialLoss()
    y, raw, sw = data(rng, "multi", 100, 4, np.float64)
    np.testing.assert_allclose(m.predict_proba(raw), skm.predict_proba(raw), rtol=1e-14)
    np.testing.assert_allclose(m.fit_intercept_only(y), skm.fit_intercept_only(y), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.fit_intercept_only(y, sw), skm.fit_intercept_only(y, sw), rtol=1e-12, atol=1e-15)
    yb = rng.random(100)
    yb[:20] = np.round(yb[:20])
    np.testing.assert_allclose(b.fit_intercept_only(yb, sw), skb.fit_intercept_only(yb, sw), rtol=1e-12)
    np.testing.assert_allclose(b.constant_to_optimal_zero(yb, sw), skb.constant_to_optimal_zero(yb, sw), rtol=1e-13)
    np.testing.assert_array_equal(m.constant_to_optimal_zero(y), skm.constant_to_optimal_zero(y))
    for attr in ["is_multiclass", "n_classes", "approx_hessian", "constant_hessian", "differentiable"]:
        assert getattr(m, attr) == getattr(skm, attr) and getattr(b, attr) == getattr(skb, attr), attr
    for o, s in [(m, skm), (b, skb)]:
        for iv in ("interval_y_true", "interval_y_pred"):
            mine, theirs = getattr(o, iv), getattr(s, iv)
            assert (mine.low, mine.high, mine.low_inclusive, mine.high_inclusive) == (
                theirs.low, theirs.high, theirs.low_inclusive, theirs.high_inclusive)
        for vals in ([0.0, 1.0, 2.0], [0.5, 0.2], [-1.0, 0.5], [0.0, 1.5], [1e-9, 1 - 1e-9]):
            v = np.array(vals)
            assert o.in_y_true_range(v) == s.in_y_true_range(v), (o, vals)
            assert o.in_y_pred_range(v) == s.in_y_pred_range(v), (o, vals)
    for o, s in [(m, skm), (b, skb)]:
        for a1, a2 in zip(o.init_gradient_and_hessian(7, np.float32), s.init_gradient_and_hessian(7, np.float32)):
            assert a1.shape == a2.shape and a1.dtype == a2.dtype and a1.flags.f_contiguous == a2.flags.f_contiguous


def test_n_classes_inferred_and_checked(rng):
    y, raw, _ = data(rng, "multi", 30, 6, np.float64)
    np.testing.assert_array_equal(MultinomialLoss().loss(y, raw), MultinomialLoss(n_classes=6).loss(y, raw))
    with pytest.raises(ValueError, match="n_classes=4"):
        MultinomialLoss(n_classes=4).loss(y, raw)
    with pytest.raises(ValueError, match="needs n_classes"):
        MultinomialLoss().fit_intercept_only(y)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        MultinomialLoss(n_classes=0)


def test_bad_input(rng):
    y, raw, sw = data(rng, "multi", 10, 3, np.float64)
    m = MultinomialLoss(n_classes=3)
    y0, raw0 = y.copy(), raw.copy()
    with pytest.raises(ValueError, match=r"y_true\[2\] = 3 is out of range"):
        m.loss(np.where(np.arange(10) == 2, 3.0, y), raw)
    with pytest.raises(ValueError, match=r"y_true\[1\] = 0.5 is not an integer"):
        m.gradient(np.where(np.arange(10) == 1, 0.5, y), raw)
    with pytest.raises(ValueError, match=r"sample_weight\[0\] = -1.0"):
        m.loss(y, raw, sample_weight=np.where(np.arange(10) == 0, -1.0, sw))
    with pytest.raises(ValueError, match="y_true has shape"):
        m.loss(y[:5], raw)
    with pytest.raises(ValueError, match="gradient_out has shape"):
        m.gradient(y, raw, gradient_out=np.empty((10, 4)))
    with pytest.raises(TypeError, match="loss_out must be float32 or float64"):
        m.loss(y, raw, loss_out=np.empty(10, dtype=np.int64))
    with pytest.raises(ValueError, match="must not overlap"):
        out = np.empty((10, 3))
        m.gradient_hessian(y, raw, gradient_out=out, hessian_out=out)
    with pytest.raises(ValueError, match="raw_prediction must have shape"):
        BinomialLoss().loss(y, raw)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(raw, raw0)


def test_zero_weights_and_empty():
    m, b = MultinomialLoss(n_classes=2), BinomialLoss()
    raw = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([0.0, 1.0])
    assert m(y, raw, sample_weight=np.zeros(2)) == 0.0
    g, h = m.gradient_hessian(y, raw, sample_weight=np.array([0.0, 1.0]))
    np.testing.assert_array_equal(g[0], 0)
    np.testing.assert_array_equal(h[0], 0)
    assert m(np.zeros(0), np.zeros((0, 2))) == 0.0 and b(np.zeros(0), np.zeros(0)) == 0.0
    assert m.loss(np.zeros(0), np.zeros((0, 2))).shape == (0,)
