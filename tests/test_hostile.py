"""Hostile arguments to every public function: a clear exception naming the argument
(TypeError for dtypes and types, ValueError for values and shapes), or, for the legal
corner cases (zero-size arrays, huge n_threads), a right answer. See test_layouts.py for
memory layouts and 64-bit indexing, test_errors.py for the first checks written."""
import numpy as np
import pytest

import xent

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)
Y = np.array([0, 1, 2, 0])
T = np.full((4, 3), 1 / 3, dtype=np.float32)
BAD_DTYPES = {
    "object": np.array([[1.0, 2.0]], dtype=object),
    "complex": np.array([[1 + 2j, 0j]]),
    "bool": np.array([[True, False]]),
    "str": np.array([["a", "b"]]),
    "bytes": np.array([[b"a", b"b"]]),
    "datetime": np.zeros((1, 2), "M8[s]"),
    "timedelta": np.zeros((1, 2), "m8[s]"),
    "void": np.zeros((1, 2), "V8"),
    "struct": np.zeros((1, 2), [("a", "f4")]),
    "float128": np.zeros((1, 2), np.longdouble),
}
LOGIT_FUNCS = {
    "logsumexp": lambda x: xent.logsumexp(x),
    "softmax": lambda x: xent.softmax(x),
    "log_softmax": lambda x: xent.log_softmax(x),
    "softmax_xent": lambda x: xent.softmax_cross_entropy(x, np.zeros(x.shape[0], int)),
    "sigmoid_xent": lambda x: xent.sigmoid_cross_entropy(x, np.zeros(x.shape)),
}


@pytest.mark.parametrize("fname", LOGIT_FUNCS)
@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_logits_of_a_bad_dtype_are_a_type_error(fname, kind):
    bad = BAD_DTYPES[kind]
    if kind == "float128" and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(TypeError, match=r"^(x|logits) "):
        LOGIT_FUNCS[fname](bad)


@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_labels_targets_and_weights_of_a_bad_dtype_are_a_type_error(kind):
    bad = BAD_DTYPES[kind]
    x = np.zeros(bad.shape, np.float32)
    rows = np.zeros(bad.shape[0], int)
    # accepted: bool targets (0/1) and long double targets or weights (converted to the
    # logits' dtype, like float64 ones)
    if kind not in ("bool", "float128"):
        with pytest.raises(TypeError, match="labels"):
            xent.softmax_cross_entropy(x, bad)
        with pytest.raises(TypeError, match="targets"):
            xent.sigmoid_cross_entropy(x, bad)
        with pytest.raises(TypeError, match="weight"):
            xent.softmax_cross_entropy(x, rows, weight=bad[0])
        with pytest.raises(TypeError, match="sample_weight"):
            xent.softmax_cross_entropy(x, rows, sample_weight=bad[:, 0])


def test_float_targets_and_bool_labels():
    # bool arrays are neither class indices nor a distribution: refused as labels
    with pytest.raises(TypeError, match="labels"):
        xent.softmax_cross_entropy(X, Y.astype(bool))
    # targets of another float dtype are converted to the logits' dtype
    a = xent.softmax_cross_entropy(X, T.astype(np.float64))
    assert a == xent.softmax_cross_entropy(X, T)


def test_labels_out_of_range_report_the_first_position_in_c_order():
    x = np.zeros((3, 4, 5), np.float64)
    y = np.zeros((3, 4), np.int64)
    y[2, 1] = 9
    y[1, 3] = -7  # first in C order
    yf = np.asfortranarray(y)  # stored column by column: the message is about the logical index
    for labels in (y, yf, y.astype(np.int32), y.astype(np.int16)):
        with pytest.raises(ValueError, match=r"labels\[1, 3\] = -7 is out of range.*\[0, 5\)"):
            xent.softmax_cross_entropy(x, labels)
    with pytest.raises(ValueError, match=r"labels\[2, 1\] = 9"):
        xent.softmax_cross_entropy(x, y, ignore_index=-7)
    with pytest.raises(ValueError, match=r"labels\[2, 1\] = 9"):
        xent.softmax_cross_entropy(x, y.astype(np.uint8) % 10 * (y >= 0))
    # the class axis moved: positions are over the labels' own shape (the logits' without axis)
    with pytest.raises(ValueError, match=r"labels\[1, 3\] = -7"):
        xent.softmax_cross_entropy(np.moveaxis(x, -1, 0), y, axis=0)


def test_shape_mismatches():
    with pytest.raises(ValueError, match=r"integer labels have shape \(4, 1\)"):
        xent.softmax_cross_entropy(X, Y[:, None])
    with pytest.raises(ValueError, match=r"integer labels have shape \(\)"):
        xent.softmax_cross_entropy(X, 1)
    with pytest.raises(ValueError, match=r"labels has shape \(3, 4\)"):
        xent.softmax_cross_entropy(X, T.T)
    with pytest.raises(ValueError, match=r"targets has shape \(3, 4\)"):
        xent.sigmoid_cross_entropy(X, T.T, axis=0)
    with pytest.raises(ValueError, match=r"weight has shape \(2,\) but must have shape \(3,\)"):
        xent.softmax_cross_entropy(X, Y, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"weight has shape \(\) "):
        xent.softmax_cross_entropy(X, Y, weight=2.0)
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\) but must have shape \(4,\)"):
        xent.softmax_cross_entropy(X, Y, sample_weight=[1.0] * 3)
    with pytest.raises(ValueError, match=r"sample_weight has shape \(4,\) but must have shape \(3,\)"):
        xent.softmax_cross_entropy(X, Y[:3], axis=0, sample_weight=np.ones(4))


def test_weights_negative_nan_or_inf_name_the_position():
    for bad, shown in ((-0.5, "-0.5"), (np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")):
        w = np.ones(3)
        w[1] = bad
        with pytest.raises(ValueError, match=rf"weight\[1\] = {shown}: weights must be finite and >= 0"):
            xent.softmax_cross_entropy(X, Y, weight=w)
        sw = np.ones((2, 2))
        sw[1, 0] = bad
        x = np.zeros((2, 3, 2))
        with pytest.raises(ValueError, match=rf"sample_weight\[1, 0\] = {shown}"):
            xent.softmax_cross_entropy(x, np.zeros((2, 2), int), axis=1, sample_weight=sw)


def test_zero_size_arrays():
    for dt in (np.float32, np.float64):
        e = np.zeros((0, 3), dt)
        for red, want in (("mean", 0.0), ("sum", 0.0)):
            assert xent.softmax_cross_entropy(e, np.zeros(0, int), reduction=red) == want
            assert xent.softmax_cross_entropy(e, e, reduction=red) == want
            assert xent.sigmoid_cross_entropy(e, e, reduction=red) == want
            assert xent.sigmoid_cross_entropy(e, e, axis=1, reduction=red) == want
        loss, grad = xent.softmax_cross_entropy(e, np.zeros(0, int), reduction="none", return_grad=True)
        assert loss.shape == (0,) and loss.dtype == dt and grad.shape == (0, 3)
        assert xent.softmax(e).shape == (0, 3) and xent.logsumexp(e).shape == (0,)
        # an empty class axis: the log of an empty sum, no probabilities, zero target mass
        w = np.zeros((2, 0), dt)
        np.testing.assert_array_equal(xent.logsumexp(w), [-np.inf, -np.inf])
        assert xent.softmax(w).shape == (2, 0) and xent.log_softmax(w).shape == (2, 0)
        loss, grad = xent.softmax_cross_entropy(w, w, reduction="none", return_grad=True)
        np.testing.assert_array_equal(loss, [0.0, 0.0])
        assert grad.shape == (2, 0)
        np.testing.assert_array_equal(xent.sigmoid_cross_entropy(w, w, axis=1, reduction="none"), [0.0, 0.0])
        with pytest.raises(ValueError, match="0 classes"):
            xent.softmax_cross_entropy(w, np.zeros(2, int))
        assert xent.softmax_cross_entropy(np.zeros((0, 0), dt), np.zeros(0, int)) == 0.0


@pytest.mark.parametrize("fname", ["logsumexp", "softmax", "log_softmax", "softmax_xent", "sigmoid_xent"])
@pytest.mark.parametrize("axis", [2, -3, 99])
def test_class_axis_out_of_range(fname, axis):
    f = {
        "logsumexp": lambda: xent.logsumexp(X, axis=axis),
        "softmax": lambda: xent.softmax(X, axis=axis),
        "log_softmax": lambda: xent.log_softmax(X, axis=axis),
        "softmax_xent": lambda: xent.softmax_cross_entropy(X, Y, axis=axis),
        "sigmoid_xent": lambda: xent.sigmoid_cross_entropy(X, X, axis=axis),
    }[fname]
    with pytest.raises(np.exceptions.AxisError, match=f"axis {axis} is out of bounds"):
        f()
    # AxisError is a ValueError (and an IndexError), as in NumPy
    assert issubclass(np.exceptions.AxisError, ValueError)


def test_scalar_options_of_the_wrong_type_or_value():
    for bad in ("abc", None, [0.1], 1j):
        with pytest.raises(TypeError, match="z_loss must be a real number"):
            xent.softmax_cross_entropy(X, Y, z_loss=bad)
        with pytest.raises(TypeError, match="label_smoothing must be a real number"):
            xent.softmax_cross_entropy(X, Y, label_smoothing=bad)
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="z_loss must be finite and >= 0"):
            xent.softmax_cross_entropy(X, Y, z_loss=bad)
    for bad in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
            xent.softmax_cross_entropy(X, Y, label_smoothing=bad)
    for bad in (1.0, "1", [1]):
        with pytest.raises(TypeError, match="ignore_index must be an integer or None"):
            xent.softmax_cross_entropy(X, Y, ignore_index=bad)
    with pytest.raises(ValueError, match="ignore_index must fit in int64"):
        xent.softmax_cross_entropy(X, Y, ignore_index=2**70)
    assert xent.softmax_cross_entropy(X, Y, ignore_index=np.int8(-1)) == xent.softmax_cross_entropy(X, Y)
    for bad in (["none"], None, "Mean"):
        with pytest.raises(ValueError, match="reduction must be one of"):
            xent.softmax_cross_entropy(X, Y, reduction=bad)
        with pytest.raises(ValueError, match="reduction must be one of"):
            xent.sigmoid_cross_entropy(X, X, reduction=bad)


def test_n_threads_is_validated_and_huge_requests_are_capped():
    from xent._validate import max_threads

    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match="n_threads must be an integer or None"):
            xent.softmax(X, n_threads=bad)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="n_threads must be >= 1"):
            xent.logsumexp(X, n_threads=bad)
    x = np.random.default_rng(0).standard_normal((3000, 1000)).astype(np.float32)
    y = np.zeros(3000, int)
    want = xent.softmax_cross_entropy(x, y, n_threads=1)
    # 2**40 does not fit the C++ int; 10**6 would otherwise start one pool thread per task
    for n in (2**40, 10**6, max_threads()):
        assert xent.softmax_cross_entropy(x, y, n_threads=n) == want
    assert max_threads() >= 8


def test_out_arguments():
    x = X.astype(np.float64)
    for f in (xent.softmax, xent.log_softmax):
        want = f(x)
        with pytest.raises(ValueError, match=r"out has shape \(3, 4\) but the result has shape \(4, 3\)"):
            f(x, out=np.empty((3, 4)))
        with pytest.raises(TypeError, match="out has dtype float32 but the result has dtype float64"):
            f(x, out=np.empty((4, 3), np.float32))
        swapped = ">f8" if np.little_endian else "<f8"
        with pytest.raises(TypeError, match=f"out has dtype {swapped} but the result has dtype float64"):
            f(x, out=np.empty((4, 3), swapped))
        misaligned = np.ndarray((4, 3), np.float64, buffer=bytearray(12 * 8 + 1), offset=1)
        with pytest.raises(ValueError, match="out must be aligned and in native byte order"):
            f(x, out=misaligned)
        with pytest.raises(ValueError, match="overlaps an input"):
            f(x, out=x[::-1])  # same memory, another order
        with pytest.raises(ValueError, match="overlaps an input"):
            f(x[:, :2], out=x[:, 1:])
        with pytest.raises(TypeError, match=r"numpy\.ndarray"):
            f(x, out=memoryview(np.empty((4, 3))))
        # strided and transposed buffers work, and out=x is in place
        big = np.full((4, 6), 7.0)
        r = f(x, out=big[:, ::2])
        assert r.base is big
        np.testing.assert_array_equal(big[:, ::2], want)
        np.testing.assert_array_equal(big[:, 1::2], 7.0)
        ft = np.empty((3, 4)).T
        np.testing.assert_array_equal(f(x, out=ft), want)
        y = x.copy()
        assert f(y, out=y) is y
        np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_nan_when_the_gradient_factor_overflows(isa, dtype):
    # found by the fuzz target: z_loss adds 2 zl lse p to the gradient; with lse near the
    # dtype's max that factor is inf, and a probability that underflowed to 0 gave 0 * inf
    big = np.finfo(dtype).max * 0.75  # 2 * lse overflows the dtype
    x = np.array([[big, 0.0, -1.0]], dtype)
    for labels in (np.array([1]), np.array([[0.0, 1.0, 0.0]], dtype)):
        loss, grad = xent.softmax_cross_entropy(x, labels, z_loss=1.0, reduction="none", return_grad=True)
        assert loss[0] == np.inf and not np.isnan(grad).any()
        assert grad[0, 0] == np.inf and grad[0, 2] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_smoothing_replaces_target_mass_on_a_masked_class(isa, dtype):
    # found by the fuzz target: label_smoothing=1 replaces the targets by the uniform
    # distribution over the unmasked classes, so mass on a masked class no longer costs
    # +inf; (1 - eps) * inf gave NaN
    x = np.array([[-np.inf, 1.0, 2.0, -0.5]], dtype)
    t = np.array([[0.7, 0.0, 0.3, 0.0]], dtype)
    uniform = np.array([[0.0, 1 / 3, 1 / 3, 1 / 3]], dtype)
    got = xent.softmax_cross_entropy(x, t, label_smoothing=1.0, reduction="none", return_grad=True)
    want = xent.softmax_cross_entropy(x, uniform, reduction="none", return_grad=True)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-7)
    assert np.isfinite(got[0]).all()


@pytest.mark.parametrize("fn", ["softmax_labels", "softmax_targets", "sigmoid"])
def test_subnormal_weight_sum_gives_no_nan(fn):
    # found by the fuzz target: a mean over sample weights summing to a subnormal number made
    # the gradient scale 1/sum overflow to inf, and inf * 0 a NaN; the weights are rescaled by a
    # power of two there, which changes no ratio sw / sum(sw)
    z = np.array([[-1.47e306], [2.0]])
    sw = np.array([1.5590355e-317, 3e-318])
    if fn == "softmax_labels":
        call = lambda s: xent.softmax_cross_entropy(z, np.array([0, 0]), weight=[3.875], sample_weight=s,  # noqa: E731
                                                   return_grad=True)
    elif fn == "softmax_targets":
        call = lambda s: xent.softmax_cross_entropy(z, np.ones((2, 1)), weight=[3.875], sample_weight=s,  # noqa: E731
                                                   return_grad=True)
    else:
        call = lambda s: xent.sigmoid_cross_entropy(z, np.ones((2, 1)), sample_weight=s, return_grad=True)  # noqa: E731
    loss, grad = call(sw)
    assert not np.isnan(grad).any() and np.isfinite(loss)
    # the same mean and gradient as weights 2**1000 times larger (exactly representable ratios)
    loss2, grad2 = call(sw * 2.0**1000)
    assert loss == loss2
    np.testing.assert_array_equal(grad, grad2)


def test_subnormal_class_weight_sum_gives_no_nan():
    # found by the fuzz target: the same overflow of 1/n when class weights alone make a
    # subnormal denominator (integer labels, weighted mean)
    x = np.array([-0.0, 0.0, 2.5, 0.125])
    w = np.array([1.380092e-317, 0.0, 0.0, 0.0])
    loss, grad = xent.softmax_cross_entropy(x, np.array(0), weight=w, ignore_index=7, return_grad=True)
    assert not np.isnan(grad).any() and np.isfinite(grad).all() and np.isfinite(loss)
    loss2, grad2 = xent.softmax_cross_entropy(x, np.array(0), weight=w * 2.0**1000, return_grad=True)
    assert loss == loss2
    np.testing.assert_array_equal(grad, grad2)
