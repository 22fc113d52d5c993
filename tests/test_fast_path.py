"""The fast path of small calls (python/xent/_fast.py, cpp/bindings/fast.cpp): with every
option at its default the public functions call a lean binding, which must give the same
bits as the general path (dtype, shape, layout and values of every result), decline
(return None) for every input it does not take, and leave the errors unchanged.

The general path is forced by replacing the ``_core.*_fast`` bindings with functions that
decline; a spy checks which path a call took, so a fast path that silently always
declined would fail here."""
import numpy as np
import pytest

import reference as ref
import xent
from xent import _core

FAST = ("softmax_xent_fast", "sigmoid_xent_fast", "softmax_norm_fast")
HW = int(_core.config()["hardware_threads"])


class Spy:
    """Wraps the fast bindings and records, per call, whether one returned a result."""

    def __init__(self, monkeypatch, decline=False):
        self.taken: list[bool] = []
        for name in FAST:
            real = getattr(_core, name)

            def fake(*args, _real=real):
                r = None if decline else _real(*args)
                self.taken.append(r is not None)
                return r

            monkeypatch.setattr(_core, name, fake)

    def last(self) -> bool:
        """Whether the last call took the fast path (False if no binding was called)."""
        return bool(self.taken) and self.taken[-1]


def _same(fast, slow):
    """Identical results: same types, dtypes, shapes, C order and bits (NaN included)."""
    if isinstance(slow, tuple):
        assert isinstance(fast, tuple) and len(fast) == len(slow)
        for f, s in zip(fast, slow):
            _same(f, s)
        return
    assert type(fast) is type(slow)
    if isinstance(slow, float):
        assert np.float64(fast).tobytes() == np.float64(slow).tobytes(), (fast, slow)
        return
    slow = np.asarray(slow)
    fast = np.asarray(fast)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert fast.flags.c_contiguous == slow.flags.c_contiguous
    assert fast.tobytes() == slow.tobytes()


def _both(monkeypatch, fn, *args, expect_fast=True, **kw):
    """fn(*args, **kw) on the fast path (asserting whether it was taken) and on the general path."""
    with monkeypatch.context() as m:
        spy = Spy(m)
        fast = fn(*args, **kw)
        assert spy.last() is expect_fast
    with monkeypatch.context() as m:
        Spy(m, decline=True)
        slow = fn(*args, **kw)
    _same(fast, slow)
    return fast


def _logits(rng, shape, dtype, extremes):
    z = (4 * rng.standard_normal(shape)).astype(dtype)
    if extremes and z.size >= 6:
        flat = z.reshape(-1)
        flat[:6] = [-np.inf, 3e4, -3e4, np.nan, np.inf, 80.0]
        if z.shape[-1] >= 2 and z.ndim >= 2:
            z.reshape(-1, z.shape[-1])[-1] = -np.inf  # a fully masked row
    return z


SHAPES = [(1, 1), (1, 10), (64, 10), (7, 3), (5, 41), (3, 4, 5), (10,), (130, 130)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ltype", [np.int32, np.int64])
@pytest.mark.parametrize("extremes", [False, True])
def test_softmax_xent_same_bits(monkeypatch, rng, shape, dtype, ltype, extremes):
    z = _logits(rng, shape, dtype, extremes)
    y = rng.integers(0, shape[-1], shape[:-1]).astype(ltype)
    for reduction in ("none", "sum", "mean"):
        for grad in (False, True):
            for nt in (None, 1, HW):
                kw = dict(reduction=reduction, return_grad=grad, n_threads=nt)
                _both(monkeypatch, xent.softmax_cross_entropy, z, y, **kw)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extremes", [False, True])
def test_sigmoid_xent_same_bits(monkeypatch, rng, shape, dtype, extremes):
    z = _logits(rng, shape, dtype, extremes)
    t = rng.random(shape).astype(dtype)
    for reduction in ("none", "sum", "mean"):
        for grad in (False, True):
            _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, reduction=reduction, return_grad=grad)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", [xent.logsumexp, xent.softmax, xent.log_softmax])
def test_normalizers_same_bits(monkeypatch, rng, shape, dtype, fn):
    for extremes in (False, True):
        z = _logits(rng, shape, dtype, extremes)
        _both(monkeypatch, fn, z)
        _both(monkeypatch, fn, z, n_threads=1)


def test_same_bits_on_every_isa(monkeypatch, rng, isa):
    z = _logits(rng, (33, 7), np.float32, True)
    y = rng.integers(0, 7, 33)
    _both(monkeypatch, xent.softmax_cross_entropy, z, y, return_grad=True)
    _both(monkeypatch, xent.sigmoid_cross_entropy, z, (z > 0).astype(np.float32), return_grad=True)
    _both(monkeypatch, xent.log_softmax, z)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_results_against_float64_references(monkeypatch, rng, dtype):
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    z = (3 * rng.standard_normal((64, 10))).astype(dtype)
    y = rng.integers(0, 10, 64)
    t = (rng.random((64, 10)) < 0.3).astype(dtype)
    spy = Spy(monkeypatch)
    loss, grad = xent.softmax_cross_entropy(z, y, return_grad=True)
    rl, rg = ref.softmax_xent_labels(z, y)
    np.testing.assert_allclose(loss, rl.mean(), **tol)
    np.testing.assert_allclose(grad, rg / 64, **tol)
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="sum", return_grad=True)
    sl, sg = ref.sigmoid_xent(z, t)
    np.testing.assert_allclose(loss, sl.sum(), **tol)
    np.testing.assert_allclose(grad, sg, **tol)
    np.testing.assert_allclose(xent.logsumexp(z), ref.logsumexp(z), **tol)
    np.testing.assert_allclose(xent.logsumexp(z[0]), ref.logsumexp(z[0]), **tol)
    np.testing.assert_allclose(xent.softmax(z), ref.softmax(z), **tol)
    np.testing.assert_allclose(xent.log_softmax(z), ref.log_softmax(z), **tol)
    assert spy.taken == [True] * 6


def _misaligned(a):
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    m = buf[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


class _Sub(np.ndarray):
    pass


def _declined_logits():
    z = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
    return {
        "fortran": np.asfortranarray(z),
        "strided": z[:, ::2],
        "big-endian": z.astype(">f4"),
        "misaligned": _misaligned(z),
        "float16": z.astype(np.float16),
        "int": np.arange(30).reshape(6, 5),
        "list": z.tolist(),
        "subclass": z.view(_Sub),
        "empty batch": z[:0],
    }


@pytest.mark.parametrize("kind", list(_declined_logits()))
def test_declined_logits_take_the_general_path(monkeypatch, kind):
    z = _declined_logits()[kind]
    shape = np.shape(z)
    ytake = np.arange(shape[0]) % shape[-1]
    _both(monkeypatch, xent.softmax_cross_entropy, z, ytake, return_grad=True, expect_fast=False)
    t = np.full(shape, 0.25, dtype=np.asarray(z).dtype if kind not in ("int", "list") else np.float64)
    _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, return_grad=True, expect_fast=False)
    _both(monkeypatch, xent.log_softmax, z, expect_fast=False)


def test_declined_labels_targets_and_threads(monkeypatch, rng):
    z = rng.standard_normal((6, 5)).astype(np.float32)
    y = np.arange(6) % 5
    for labels in (y.astype(np.uint8), y.astype(np.int16), y.astype(">i8"), _misaligned(y), y.tolist()):
        _both(monkeypatch, xent.softmax_cross_entropy, z, labels, return_grad=True, expect_fast=False)
    # strided labels are taken as they are (no copy on either path)
    _both(monkeypatch, xent.softmax_cross_entropy, z, np.repeat(y, 2)[::2], return_grad=True)
    t = rng.random((6, 5))
    for targets in (t, t.astype(np.float32).tolist(), t.astype(">f4")):
        _both(monkeypatch, xent.sigmoid_cross_entropy, z, targets, expect_fast=False)
    _both(monkeypatch, xent.sigmoid_cross_entropy, z, t.astype(np.float32)[:, ::-1])
    for nt in (HW + 1, 10**6, np.int64(1)):
        _both(monkeypatch, xent.softmax_cross_entropy, z, y, n_threads=nt, expect_fast=False)
    _both(monkeypatch, xent.logsumexp, z.T, expect_fast=True)  # any layout for a reduction


def test_options_equal_to_the_defaults_give_the_same_bits(monkeypatch, rng):
    z = rng.standard_normal((8, 4))
    y = rng.integers(0, 4, 8)
    fast = xent.softmax_cross_entropy(z, y, return_grad=True)
    for kw in ({"axis": 1}, {"z_loss": 0}, {"label_smoothing": float("0")}, {"check_finite": 0}):
        _same(_both(monkeypatch, xent.softmax_cross_entropy, z, y, return_grad=True, expect_fast=False, **kw), fast)
    _same(xent.softmax_cross_entropy(z, y, return_grad=1), fast)
    t = (z > 0).astype(np.float64)
    _same(xent.sigmoid_cross_entropy(z, t, label_smoothing=0), xent.sigmoid_cross_entropy(z, t))


@pytest.mark.parametrize("ltype", [np.int32, np.int64])
def test_bad_labels_raise_the_same_error(monkeypatch, ltype):
    z = np.zeros((2, 3, 4), dtype=np.float32)
    for value in (4, -1, 2**31 - 1):
        y = np.zeros((2, 3), dtype=ltype)
        y[1, 2] = value
        with monkeypatch.context() as m:
            spy = Spy(m)
            with pytest.raises(ValueError, match=rf"^labels\[1, 2\] = {value} is out of range"):
                xent.softmax_cross_entropy(z, y, return_grad=True)
            assert spy.taken == [False]


def test_other_errors_are_unchanged(monkeypatch):
    z = np.zeros((4, 3))
    y = np.zeros(4, dtype=np.int64)
    bad = [
        (dict(reduction="avg"), ValueError, "reduction"),
        (dict(n_threads=0), ValueError, "n_threads"),
        (dict(n_threads=True), TypeError, "n_threads"),
        (dict(n_threads=2.0), TypeError, "n_threads"),
    ]
    for kw, exc, what in bad:
        for decline in (False, True):
            with monkeypatch.context() as m:
                Spy(m, decline=decline)
                with pytest.raises(exc, match=what):
                    xent.softmax_cross_entropy(z, y, **kw)
                with pytest.raises(exc, match=what):
                    xent.sigmoid_cross_entropy(z, z, **kw)
    with pytest.raises(ValueError, match="labels have shape"):
        xent.softmax_cross_entropy(z, y[:3])
    with pytest.raises(ValueError, match="targets has shape"):
        xent.sigmoid_cross_entropy(z, z[:3])
    with pytest.raises(ValueError, match="at least one dimension"):
        xent.logsumexp(np.float64(1.0))


def test_inputs_are_not_modified(rng):
    z = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 5, 16)
    t = rng.random((16, 5)).astype(np.float32)
    copies = [a.copy() for a in (z, y, t)]
    z.flags.writeable = y.flags.writeable = t.flags.writeable = False  # read-only inputs are fine
    _, g = xent.softmax_cross_entropy(z, y, return_grad=True)
    xent.softmax_cross_entropy(z, y, reduction="none")
    xent.sigmoid_cross_entropy(z, t, return_grad=True)
    xent.logsumexp(z), xent.softmax(z), xent.log_softmax(z)
    for a, c in zip((z, y, t), copies):
        np.testing.assert_array_equal(a, c)
    assert g.flags.writeable and g.flags.owndata and not np.shares_memory(g, z)


@pytest.mark.parametrize("ltype", [np.int32, np.int64])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_the_first_bad_label_is_reported(rng, ltype, layout):
    """find_bad_label's flat loop (contiguous labels) and its strided one agree with NumPy on
    the first bad label in C order, ignore_index excepted, wherever it lies."""
    C = 5
    z = np.zeros((3, 4, 6, C))
    for trial in range(20):
        full = rng.integers(0, C, (3, 4, 12)).astype(ltype)
        y = full[:, :, ::2] if layout == "strided" else np.ascontiguousarray(full[:, :, :6])
        n_bad = trial % 3 + 1
        for _ in range(n_bad):
            y[tuple(rng.integers(0, s) for s in y.shape)] = rng.choice([-7, C, 99, -100])
        ignore = -100 if trial % 2 else None
        bad = ((y < 0) | (y >= C)) & (y != (ignore if ignore is not None else C + 1000))
        if not bad.any():
            xent.softmax_cross_entropy(z, y, ignore_index=ignore)
            continue
        pos = np.unravel_index(int(np.flatnonzero(bad)[0]), y.shape)
        want = rf"^labels\[{', '.join(str(int(p)) for p in pos)}\] = {int(y[pos])} is out of range"
        with pytest.raises(ValueError, match=want):
            xent.softmax_cross_entropy(z, y, ignore_index=ignore)
        if ignore is None:
            with pytest.raises(ValueError, match=want):
                xent.softmax_cross_entropy(z, y, return_grad=True)  # the fast binding declines
