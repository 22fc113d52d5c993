"""The softmax family for small C, where the kernels put rows in vector lanes
(cpp/src/kernels/smallc-inl.hpp; C <= 128 float32, 80 float64): integer-label cross-entropy,
logsumexp, softmax and log_softmax on groups of W rows, partial groups, and rows of every
kind mixed inside one group, against the extended-precision reference."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL

# around the lane widths (f64 AVX2 4, f32 AVX2 8, AVX-512 16) and the switches to the row
# kernels (after 80 classes in float64, 128 in float32)
CLASSES = [1, 2, 3, 4, 7, 8, 9, 16, 17, 39, 40, 41, 64, 65, 80, 81, 96, 97, 128, 129]
ROWS = [1, 3, 4, 8, 9, 13, 33]


def _mixed_logits(rng, n, c, dtype):
    z = (5 * rng.standard_normal((n, c))).astype(dtype)
    kinds = rng.integers(0, 6, size=n)
    for i, k in enumerate(kinds):
        if k == 1:  # huge logits: plain exp would overflow
            z[i] = (rng.random(c) * 80 + 60).astype(dtype)
        elif k == 2:  # tiny logits
            z[i] = (rng.standard_normal(c) * 1e-30).astype(dtype)
        elif k == 3 and c > 1:  # some classes masked
            z[i, rng.random(c) < 0.5] = -np.inf
            z[i, rng.integers(c)] = 1.0
    return z


def _labels_live(z, rng):
    """Labels on unmasked classes where the row has one (else any class)."""
    y = np.empty(z.shape[0], dtype=np.int64)
    for i, r in enumerate(z):
        live = np.flatnonzero(r > -np.inf)
        y[i] = rng.choice(live) if live.size else rng.integers(z.shape[1])
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CLASSES)
def test_rows_match_reference(isa, rng, dtype, c):
    for n in ROWS:
        z = _mixed_logits(rng, n, c, dtype)
        y = _labels_live(z, rng)
        loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
        want, want_grad = ref.softmax_xent_labels(z, y)
        np.testing.assert_allclose(loss, want, **LOSS_TOL[dtype], err_msg=f"n={n} c={c}")
        np.testing.assert_allclose(grad, want_grad, **GRAD_TOL[dtype], err_msg=f"n={n} c={c}")
        # the forward-only call gives the same losses
        np.testing.assert_array_equal(xent.softmax_cross_entropy(z, y, reduction="none"), loss)
        s = xent.softmax_cross_entropy(z, y, reduction="sum")
        np.testing.assert_allclose(s, np.sum(want), rtol=1e-12 if dtype == np.float64 else 2e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_confident_rows_keep_relative_accuracy(isa, dtype):
    # loss = log1p(sum of tiny exps): relative accuracy, not absolute, must hold
    c = 10
    z = np.zeros((9, c), dtype=dtype)
    z[:, 3] = np.arange(9) * 3 + 12  # exp(-12) .. exp(-36)
    y = np.full(9, 3)
    loss = xent.softmax_cross_entropy(z, y, reduction="none")
    # log1p written out: the reference's log(1 + tiny) in long double loses the digits
    want = np.log1p((c - 1) * np.exp(-z[:, 3].astype(np.float64)))
    assert np.all(loss > 0)
    np.testing.assert_allclose(loss, want, rtol=LOSS_TOL[dtype]["rtol"], atol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_stay_in_their_lane(isa, rng, bad):
    z = rng.standard_normal((11, 5)).astype(np.float32)
    y = rng.integers(0, 5, 11)
    z[4, 2] = bad
    z[9, y[9]] = bad
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    ok = np.setdiff1d(np.arange(11), [4, 9])
    want, want_grad = ref.softmax_xent_labels(z[ok], y[ok])
    np.testing.assert_allclose(loss[ok], want, **LOSS_TOL[np.float32])
    np.testing.assert_allclose(grad[ok], want_grad, **GRAD_TOL[np.float32])
    for i in (4, 9):  # NaN loss and gradient, as the row kernels (C > 128) and PyTorch give
        assert np.isnan(loss[i]) and np.isnan(grad[i]).all()
    wide = np.zeros((2, 200), np.float32)  # the row kernels' answer
    wide[0, :5], wide[1, :5] = z[4], z[9]
    wl, wg = xent.softmax_cross_entropy(wide, y[[4, 9]], reduction="none", return_grad=True)
    assert np.isnan(wl).all() and np.isnan(wg).all()


def test_nan_among_masks_is_nan(isa):
    # max() skips NaN: a row of -inf and one NaN must still be NaN, not "fully masked"
    z = np.array([[-np.inf, np.nan, -np.inf], [0.0, 1.0, 2.0], [np.nan, -np.inf, -np.inf]], dtype=np.float32)
    loss, grad = xent.softmax_cross_entropy(z, [0, 2, 1], reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(loss[2]) and np.isfinite(loss[1])
    assert np.isnan(grad[0]).all() and np.isnan(grad[2]).all() and np.isfinite(grad[1]).all()


def test_fully_masked_rows_among_others(isa, rng):
    z = rng.standard_normal((10, 6))
    z[[0, 5, 9]] = -np.inf
    y = rng.integers(0, 6, 10)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    assert np.all(loss[[0, 5, 9]] == np.inf) and np.all(grad[[0, 5, 9]] == 0)
    want, want_grad = ref.softmax_xent_labels(z, y)
    np.testing.assert_allclose(loss, want, **LOSS_TOL[np.float64])
    np.testing.assert_allclose(grad, want_grad, **GRAD_TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_options_in_lanes(isa, rng, dtype):
    n, c = 21, 7
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    y = rng.integers(0, c, n)
    y[[2, 3, 17]] = -1
    w = rng.random(c).astype(dtype) + 0.1
    sw = rng.random(n).astype(dtype)
    sw[5] = 0
    zl = 1e-2
    loss, grad = xent.softmax_cross_entropy(
        z, y, weight=w, sample_weight=sw, ignore_index=-1, z_loss=zl, return_grad=True
    )
    # written out in float64: row weight r = w[y] sw (0 if ignored), l = lse - z_y + zl lse^2,
    # mean = sum(r l) / sum(r), gradient r ((1 + 2 zl lse) p - onehot(y)) / sum(r)
    zz = z.astype(np.float64)
    lse = ref.logsumexp(zz)
    keep = y != -1
    r = np.where(keep, w[np.where(keep, y, 0)] * sw, 0.0).astype(np.float64)
    yy = np.where(keep, y, 0)
    l = lse - zz[np.arange(n), yy] + zl * lse**2
    want = np.sum(r * l) / r.sum()
    p = np.exp(zz - lse[:, None])
    g = (1 + 2 * zl * lse)[:, None] * p
    g[np.arange(n), yy] -= 1
    g *= (r / r.sum())[:, None]
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss, want, rtol=tol["rtol"])
    np.testing.assert_allclose(grad, g, **tol)
    assert np.all(grad[[2, 3, 5, 17]] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [3, 10, 17, 64])
def test_weighted_rows_every_layout(isa, rng, dtype, c):
    """Class and sample weights, no row ignored: a 2-d call fills its groups with each row's
    weight and no per-row test when every weight is > 0 and the scales of the least and the
    largest fit; a zero weight or a scale out of range sends the call through the per-row
    loop, and rows that do not collapse to one dimension through the row cursor. Every way
    gives the same bits, and the float64 formula's values."""
    n = 36
    z0 = (3 * rng.standard_normal((n, c))).astype(dtype)
    y = rng.integers(0, c, n)
    w = (rng.random(c) + 0.1).astype(dtype)
    sw = (rng.random(n) + 0.1).astype(dtype)
    zero_w, zero_sw = w.copy(), sw.copy()
    zero_w[y[4]], zero_sw[6] = 0, 0
    tiny = sw.copy()
    tiny[9] = np.finfo(dtype).tiny / 4  # a subnormal scale with reduction="sum"
    huge = np.full(c, np.finfo(dtype).max / 8, dtype)  # scales over the bound: split
    wide = np.zeros(2 * n, dtype)
    wide[::2] = sw
    # (options, a row of weight 0 given a NaN logit: it adds exactly 0 and gets a +0 gradient)
    cases = [(dict(weight=w), None), (dict(sample_weight=sw), None), (dict(weight=w, sample_weight=sw), None),
             (dict(sample_weight=wide[::2]), None), (dict(weight=zero_w), 4), (dict(sample_weight=zero_sw), 6),
             (dict(weight=w, sample_weight=tiny), None), (dict(weight=huge), None),
             (dict(weight=w, softcap=4.0), None), (dict(sample_weight=sw, z_loss=1e-3), None)]
    bits = f"u{z0.itemsize}"
    for kw, bad in cases:
        z = z0.copy()
        if bad is not None:
            z[bad, 1] = np.nan
        # the same rows in a (4, 9) grid cut from a padded array: two row dims, the row cursor
        z3 = np.zeros((4, 10, c + 1), dtype)[:, :9, :c]
        z3[:] = z.reshape(4, 9, c)
        for reduction in ("none", "sum", "mean"):
            loss, grad = xent.softmax_cross_entropy(z, y, reduction=reduction, return_grad=True, **kw)
            kw3 = {k: (v.reshape(4, 9) if k == "sample_weight" else v) for k, v in kw.items()}
            loss3, grad3 = xent.softmax_cross_entropy(z3, y.reshape(4, 9), reduction=reduction, return_grad=True,
                                                      **kw3)
            np.testing.assert_array_equal(np.reshape(loss3, np.shape(loss)), loss)
            np.testing.assert_array_equal(grad3.reshape(n, c).view(bits), grad.view(bits))
            if bad is not None:
                assert np.isfinite(loss).all() and not np.signbit(grad[bad]).any() and not grad[bad].any()
            if reduction == "none":  # into a strided out=
                out = np.zeros(2 * n, dtype)[::2]
                assert xent.softmax_cross_entropy(z, y, reduction="none", out=out, **kw) is out
                np.testing.assert_array_equal(out, loss)
            if reduction != "none" or "softcap" in kw or "z_loss" in kw:
                continue
            zz = z0.astype(np.float64)  # (the weight-0 row's NaN: its value is 0 either way)
            lse = ref.logsumexp(zz)
            r = np.asarray(kw.get("weight", np.ones(c)), np.float64)[y] * np.asarray(kw.get("sample_weight", 1.0))
            g = np.exp(zz - lse[:, None])
            g[np.arange(n), y] -= 1
            with np.errstate(over="ignore", invalid="ignore"):  # (float64's huge weights)
                want = r * (lse - zz[np.arange(n), y])
                want_g = g * r[:, None]
            fin = np.isfinite(want_g).all(axis=1)
            big = want > np.finfo(dtype).max  # (the huge weights': +inf in dtype)
            assert np.all(np.isinf(loss[big]))
            np.testing.assert_allclose(loss[~big], want[~big], **LOSS_TOL[dtype])
            np.testing.assert_allclose(grad[fin], want_g[fin], rtol=LOSS_TOL[dtype]["rtol"],
                                       atol=GRAD_TOL[dtype]["atol"] * r.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_rows_in_threads(rng, dtype):
    """Each task of a threaded call bounds its own rows' sample weights: a subnormal scale in
    a late task (reduction="sum") takes the per-row loop there, as on one thread and in the
    row cursor's layout: the same bits."""
    n, c = 30000, 10
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    y = rng.integers(0, c, n)
    sw = (rng.random(n) + 0.1).astype(dtype)
    sw[-5] = np.finfo(dtype).tiny / 4
    z3 = np.zeros((n // 10, 11, c), dtype)[:, :10]
    z3[:] = z.reshape(n // 10, 10, c)
    one = xent.softmax_cross_entropy(z, y, sample_weight=sw, reduction="sum", return_grad=True, n_threads=1)
    cur = xent.softmax_cross_entropy(z3, y.reshape(-1, 10), sample_weight=sw.reshape(-1, 10), reduction="sum",
                                     return_grad=True, n_threads=1)
    assert one[0] == cur[0]
    np.testing.assert_array_equal(one[1], cur[1].reshape(n, c))
    for nt in (2, 3):
        loss, grad = xent.softmax_cross_entropy(z, y, sample_weight=sw, reduction="sum", return_grad=True,
                                                n_threads=nt)
        assert loss == one[0]
        np.testing.assert_array_equal(grad, one[1])


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.uint8])
def test_strided_class_axis_and_label_dtypes(isa, rng, label_dtype):
    z = rng.standard_normal((6, 19, 3)).astype(np.float32)  # class axis 1, stride 3
    y = rng.integers(0, 6, (19, 3)).astype(label_dtype)
    z0 = np.moveaxis(z, 0, -1)  # (19, 3, 6)
    loss, grad = xent.softmax_cross_entropy(z, y, axis=0, reduction="none", return_grad=True)
    want, want_grad = ref.softmax_xent_labels(z0, y)
    np.testing.assert_allclose(loss, want, **LOSS_TOL[np.float32])
    np.testing.assert_allclose(np.moveaxis(grad, 0, -1), want_grad, **GRAD_TOL[np.float32])


def test_gradient_by_finite_differences(rng):
    z = rng.standard_normal((9, 5))
    y = rng.integers(0, 5, 9)
    _, g = xent.softmax_cross_entropy(z, y, z_loss=0.1, return_grad=True)
    num = ref.numeric_grad(lambda x: xent.softmax_cross_entropy(x, y, z_loss=0.1), z)
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-9)


def test_threads_bit_identical(rng):
    z = rng.standard_normal((300_001, 10)).astype(np.float32)
    y = rng.integers(0, 10, 300_001)
    one = xent.softmax_cross_entropy(z, y, return_grad=True, n_threads=1)
    for nt in (2, 3):
        other = xent.softmax_cross_entropy(z, y, return_grad=True, n_threads=nt)
        assert one[0] == other[0]
        np.testing.assert_array_equal(one[1], other[1])


# ---- logsumexp, softmax and log_softmax in lanes (smallc-inl.hpp, lanes_normalize) ----

NORMALIZERS = {"logsumexp": (xent.logsumexp, ref.logsumexp, LOSS_TOL),
               "softmax": (xent.softmax, ref.softmax, GRAD_TOL),
               "log_softmax": (xent.log_softmax, ref.log_softmax, LOSS_TOL)}


def _special_rows(rng, n, c, dtype):
    """n rows of random logits, with special rows among them: all -inf, a +inf, two +inf,
    +inf beside NaN, a NaN, a NaN among -inf, -inf beside +inf, one live class."""
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    kinds = {}
    specials = ["masked", "inf", "inf2", "inf_nan", "nan", "nan_masked", "inf_masked", "one_live"]
    for i, kind in zip(rng.permutation(n)[: len(specials)], specials):
        kinds[int(i)] = kind
        k = int(rng.integers(c))
        if kind == "masked":
            z[i] = -np.inf
        elif kind == "inf":
            z[i, k] = np.inf
        elif kind == "inf2":
            z[i, [k, (k + 1) % c]] = np.inf
        elif kind == "inf_nan":
            z[i, k] = np.inf
            z[i, (k + 1) % c] = np.nan
        elif kind == "nan":
            z[i, k] = np.nan
        elif kind == "nan_masked":
            z[i] = -np.inf
            z[i, k] = np.nan
        elif kind == "inf_masked":
            z[i] = -np.inf
            z[i, k] = np.inf
        else:
            z[i] = -np.inf
            z[i, k] = 2.5
    return z, kinds


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CLASSES)
def test_normalizers_match_reference(isa, rng, dtype, c):
    for n in ROWS:
        z = _mixed_logits(rng, n, c, dtype)
        keep = z.copy()
        for name, (f, want, tol) in NORMALIZERS.items():
            got = f(z)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want(z), **tol[dtype], err_msg=f"{name} n={n} c={c}")
        np.testing.assert_array_equal(z, keep)
    # rows summing to one, and softmax = exp(log_softmax) to the dtype's precision
    z = _mixed_logits(rng, 33, c, dtype)
    live = z.max(axis=1) > -np.inf
    np.testing.assert_allclose(xent.softmax(z).sum(axis=1)[live], 1.0, rtol=8 * np.finfo(dtype).eps * c)
    np.testing.assert_allclose(np.exp(xent.log_softmax(z)), xent.softmax(z), **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 2, 3, 8, 13, 40, 64, 80, 96, 128])
def test_normalizers_special_rows_in_a_group(isa, rng, dtype, c):
    """Special rows share their group of W rows with finite ones: each row gives its own
    answer (the row kernels' rules, docs/losses.md) and the bits of that row computed alone."""
    z, kinds = _special_rows(rng, 19, c, dtype)
    lse, sm, lsm = xent.logsumexp(z), xent.softmax(z), xent.log_softmax(z)
    for i in range(19):
        alone = z[i : i + 1]
        np.testing.assert_array_equal(lse[i], xent.logsumexp(alone)[0], err_msg=f"row {i}")
        np.testing.assert_array_equal(sm[i], xent.softmax(alone)[0], err_msg=f"row {i}")
        np.testing.assert_array_equal(lsm[i], xent.log_softmax(alone)[0], err_msg=f"row {i}")
        kind = kinds.get(i)
        if kind == "masked":
            assert lse[i] == -np.inf and np.all(sm[i] == 0) and np.all(lsm[i] == -np.inf)
        elif kind in ("inf", "inf2", "inf_masked"):
            assert lse[i] == np.inf and np.isnan(sm[i]).all() and np.isnan(lsm[i]).all()
        elif kind in ("inf_nan", "nan", "nan_masked"):
            assert np.isnan(lse[i]) and np.isnan(sm[i]).all() and np.isnan(lsm[i]).all()
        else:
            for name, (f, want, tol) in NORMALIZERS.items():
                np.testing.assert_allclose(f(alone)[0], want(alone)[0], **tol[dtype], err_msg=f"{name} row {i}")
    if c > 1:  # one live class: probability 1 there, log-probability 0
        i = next(i for i, k in kinds.items() if k == "one_live")
        k = int(np.argmax(z[i]))
        assert sm[i, k] == 1 and lsm[i, k] == 0 and lse[i] == z[i, k]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 5, 8, 16, 23, 40, 61, 96, 123])
def test_normalizers_any_layout_and_threads(isa, rng, dtype, c):
    """The rows' moves into the lanes (a vector per class for adjacent rows, transposes for
    contiguous ones, element by element otherwise) give the C-order bits for every layout,
    output buffer, in-place call and thread count."""
    n = 4099
    z = _mixed_logits(rng, n, c, dtype)
    want = {name: f(z, n_threads=1) for name, (f, _, _) in NORMALIZERS.items()}
    wide = np.empty((n, 2 * c + 1), dtype)
    wide[:, 1::2] = z  # classes 2 apart
    views = {
        "F": np.asfortranarray(z),
        "rows 2 apart": np.repeat(z, 2, axis=0)[::2],
        "classes 2 apart": wide[:, 1::2],
        "reversed": np.ascontiguousarray(z[::-1, ::-1])[::-1, ::-1],
        "moved": np.ascontiguousarray(z.T).T,
    }
    for lay, v in views.items():
        keep = v.copy()
        for name, (f, _, _) in NORMALIZERS.items():
            for nt in (1, 2, 3):
                np.testing.assert_array_equal(f(v, n_threads=nt), want[name], err_msg=f"{name} {lay} {nt}")
        np.testing.assert_array_equal(v, keep, err_msg=f"{lay}: input modified")
    # axis 0 of the transposed array: the same rows
    np.testing.assert_array_equal(xent.logsumexp(z.T, axis=0), want["logsumexp"])
    np.testing.assert_array_equal(xent.softmax(np.ascontiguousarray(z.T), axis=0).T, want["softmax"])
    for name in ("softmax", "log_softmax"):
        f = NORMALIZERS[name][0]
        for order in ("C", "F"):  # out= in either order, and in place over the logits
            out = np.empty(z.shape, dtype, order=order)
            assert f(z, out=out) is out
            np.testing.assert_array_equal(out, want[name], err_msg=f"{name} out {order}")
            zi = np.array(z, order=order)
            assert f(zi, out=zi, n_threads=2) is zi
            np.testing.assert_array_equal(zi, want[name], err_msg=f"{name} in place {order}")


@pytest.mark.parametrize("c", [40, 64, 96, 128])
def test_float32_sums_of_equal_terms(isa, c):
    """The worst case of a float32 sum, C - 1 equal terms (each addition rounds the same way),
    over a sweep of terms, shifted so that lse ~ 0 where only the absolute tolerance is left:
    the lanes' four accumulators keep log(s) within it (one accumulator of 96 terms did not)."""
    x = np.linspace(-3.0, 0.0, 3001)
    z = np.zeros((x.size, c))
    z[:, 1:] = x[:, None]
    z = (z - np.log1p((c - 1) * np.exp(x))[:, None]).astype(np.float32)
    y = np.zeros(x.size, dtype=np.int64)
    np.testing.assert_allclose(xent.logsumexp(z), ref.logsumexp(z), **LOSS_TOL[np.float32])
    np.testing.assert_allclose(xent.log_softmax(z), ref.log_softmax(z), **LOSS_TOL[np.float32])
    np.testing.assert_allclose(xent.softmax_cross_entropy(z, y, reduction="none"),
                               ref.softmax_xent_labels(z, y)[0], **LOSS_TOL[np.float32])
