"""The fast path of small calls (python/xent/_fast.py, cpp/bindings/fast.cpp): with every
option at its default the public functions call a lean binding, which must give the same
bits as the general path (dtype, shape, layout and values of every result), decline
(return None) for every input it does not take, and leave the errors unchanged.

The general path is forced by replacing the ``_core.*_fast`` bindings with functions that
decline; a spy checks which path a call took, so a fast path that silently always
declined would fail here."""
import inspect
import math
import sys

import numpy as np
import pytest

import reference as ref
import xent
from xent import _core

FAST = ("softmax_xent_fast", "softmax_factor_fast", "sigmoid_xent_fast", "softmax_norm_fast")
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
    for kw in ({"axis": 1}, {"check_finite": 0}):
        _same(_both(monkeypatch, xent.softmax_cross_entropy, z, y, return_grad=True, expect_fast=False, **kw), fast)
    for kw in ({"z_loss": 0}, {"label_smoothing": float("0")}, {"softcap": None}):  # (options the fast path takes)
        _same(_both(monkeypatch, xent.softmax_cross_entropy, z, y, return_grad=True, **kw), fast)
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


def _both_fresh(monkeypatch, fn, make, expect_fast=True):
    """fn(**make()) on the fast path and on the general path, each call on freshly made
    inputs and buffers (a buffer may be an input, which the call overwrites). Returns the
    two calls' arguments and results; results must be the same bits, and every caller's
    buffer must be returned as itself."""
    runs = []
    for decline in (False, True):
        kw = make()
        with monkeypatch.context() as m:
            spy = Spy(m, decline=decline)
            r = fn(**kw)
            if not decline:
                assert spy.last() is expect_fast
        runs.append((kw, r))
    (kf, fast), (ks, slow) = runs
    _same(fast, slow)
    for key in ("logits", "labels", "targets"):  # inputs overwritten alike, or not at all
        if key in kf:
            _same(kf[key], ks[key])
    for res, kw in ((fast, kf), (slow, ks)):
        loss, grad = res if isinstance(res, tuple) else (res, None)
        if kw.get("out") is not None:
            assert loss is kw["out"]
        if kw.get("grad_out") is not None:
            assert grad is kw["grad_out"]
    return runs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (64, 10), (5, 41), (3, 4, 5), (10,), (130, 130)])
def test_buffers_take_the_fast_path(monkeypatch, rng, dtype, shape):
    z0 = _logits(rng, shape, dtype, True)
    y0 = rng.integers(0, shape[-1], shape[:-1])
    t0 = rng.random(shape).astype(dtype)
    rows = shape[:-1]
    for reduction in ("none", "sum", "mean"):
        cases = [
            lambda: dict(grad_out=np.full(shape, 7, dtype)),
            lambda: dict(grad_out="logits"),  # the gradient over the logits (a training loop's buffer)
        ]
        if reduction == "none":
            cases += [
                lambda: dict(out=np.full(rows, 7, dtype), grad_out=np.full(shape, 7, dtype)),
                lambda: dict(out=np.full(rows, 7, dtype), grad_out="logits"),
                lambda: dict(out=np.full(rows, 7, dtype), return_grad=False),
            ]
        for case in cases:

            def softmax_args(reduction=reduction, case=case):
                kw = {**dict(logits=z0.copy(), labels=y0.copy(), reduction=reduction, return_grad=True), **case()}
                if isinstance(kw.get("grad_out"), str):
                    kw["grad_out"] = kw["logits"]
                return kw

            _both_fresh(monkeypatch, xent.softmax_cross_entropy, softmax_args)

            def sigmoid_args(reduction=reduction, case=case):
                kw = {**dict(logits=z0.copy(), targets=t0.copy(), reduction=reduction, return_grad=True), **case()}
                if kw.get("out") is not None:
                    kw["out"] = np.full(shape, 7, dtype)  # elementwise losses
                if isinstance(kw.get("grad_out"), str):
                    kw["grad_out"] = kw["logits"]
                return kw

            _both_fresh(monkeypatch, xent.sigmoid_cross_entropy, sigmoid_args)
    # sigmoid buffers may also be the targets, or the loss go over the logits
    for make in (
        lambda: dict(grad_out="targets"),
        lambda: dict(out="logits", grad_out="targets"),
        lambda: dict(out="targets", grad_out="logits"),
    ):

        def args(make=make):
            kw = dict(logits=z0.copy(), targets=t0.copy(), reduction="none", return_grad=True, **make())
            for k in ("out", "grad_out"):
                if isinstance(kw.get(k), str):
                    kw[k] = kw[kw[k]]
            return kw

        _both_fresh(monkeypatch, xent.sigmoid_cross_entropy, args)


def test_buffers_against_float64_references(rng):
    z = (3 * rng.standard_normal((64, 10))).astype(np.float32)
    y = rng.integers(0, 10, 64)
    g = np.empty_like(z)
    loss, grad = xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=g)
    want_loss, want_grad = ref.softmax_xent_labels(z.astype(np.float64), y)
    assert grad is g
    np.testing.assert_allclose(loss, want_loss.mean(), rtol=2e-6)
    np.testing.assert_allclose(g, want_grad / 64, rtol=2e-5, atol=1e-7)
    zz = z.copy()
    loss, grad = xent.softmax_cross_entropy(zz, y, reduction="none", return_grad=True, grad_out=zz)
    assert grad is zz
    np.testing.assert_allclose(loss, want_loss, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(zz, want_grad, rtol=2e-5, atol=1e-7)


def _overlapping(shape, dtype, shift):
    """Two C-order arrays of `shape` in one buffer, `shift` elements apart (overlapping)."""
    n = int(np.prod(shape))
    base = np.zeros(n + shift, dtype)
    return base[:n].reshape(shape), base[shift:shift + n].reshape(shape)


def test_declined_buffers_take_the_general_path(monkeypatch, rng):
    z0 = rng.standard_normal((6, 5)).astype(np.float32)
    y0 = np.arange(6) % 5
    t0 = rng.random((6, 5)).astype(np.float32)
    strided = lambda: np.zeros((6, 10), np.float32)[:, ::2]  # noqa: E731
    fortran = lambda: np.zeros((6, 5), np.float32, order="F")  # noqa: E731
    for make in (strided, fortran):

        def softmax_args(make=make):
            return dict(logits=z0.copy(), labels=y0.copy(), return_grad=True, grad_out=make())

        def sigmoid_args(make=make):
            return dict(logits=z0.copy(), targets=t0.copy(), return_grad=True, grad_out=make())

        _both_fresh(monkeypatch, xent.softmax_cross_entropy, softmax_args, expect_fast=False)
        _both_fresh(monkeypatch, xent.sigmoid_cross_entropy, sigmoid_args, expect_fast=False)

    def row_out_strided():
        return dict(logits=z0.copy(), labels=y0.copy(), reduction="none", out=np.zeros(12, np.float32)[::2])

    _both_fresh(monkeypatch, xent.softmax_cross_entropy, row_out_strided, expect_fast=False)


def _raises_alike(monkeypatch, fn, kw, exc, match):
    """fn(**kw()) raises exc (matching) on both paths, and the fast binding declined."""
    for decline in (False, True):
        with monkeypatch.context() as m:
            spy = Spy(m, decline=decline)
            with pytest.raises(exc, match=match):
                fn(**kw())
            assert not any(spy.taken)


def test_bad_buffers_raise_the_same_errors(monkeypatch):
    z0 = np.zeros((6, 5), np.float32)
    y0 = np.arange(6) % 5

    def read_only():
        g = np.zeros((6, 5), np.float32)
        g.flags.writeable = False
        return g

    sm = xent.softmax_cross_entropy
    sg = xent.sigmoid_cross_entropy
    bad = [
        (sm, dict(grad_out=np.zeros((6, 5), np.float64)), TypeError, "grad_out has dtype"),
        (sm, dict(grad_out=np.zeros((5, 6), np.float32)), ValueError, "grad_out has shape"),
        (sm, dict(grad_out=read_only()), ValueError, "grad_out is read-only"),
        (sm, dict(grad_out=_misaligned(np.zeros((6, 5), np.float32))), ValueError, "grad_out must be aligned"),
        (sm, dict(grad_out=np.zeros((6, 5), np.float32), return_grad=False), ValueError, "grad_out= needs"),
        (sm, dict(out=np.zeros(6, np.float32), reduction="mean"), ValueError, "out= holds per-row losses"),
        (sm, dict(out=np.zeros(6, np.float64), reduction="none"), TypeError, "out has dtype"),
        (sg, dict(grad_out=np.zeros((6, 5), np.float64)), TypeError, "grad_out has dtype"),
        (sg, dict(grad_out=read_only()), ValueError, "grad_out is read-only"),
        (sg, dict(grad_out=np.zeros((6, 5), np.float32), return_grad=False), ValueError, "only used with return_grad"),
        (sg, dict(out=np.zeros((6, 5), np.float32), reduction="sum"), ValueError, "out is only used"),
    ]
    for fn, extra, exc, match in bad:
        second = "labels" if fn is sm else "targets"

        def kw(fn=fn, extra=extra, second=second):
            base = dict(logits=z0.copy(), return_grad=True)
            base[second] = y0.copy() if second == "labels" else z0.copy()
            return {**base, **extra}

        _raises_alike(monkeypatch, fn, kw, exc, match)

    def partly_over_logits(fn, second):
        def kw():
            z, g = _overlapping((6, 5), np.float32, 5)
            base = dict(logits=z, return_grad=True, grad_out=g)
            base[second] = y0.copy() if second == "labels" else np.zeros((6, 5), np.float32)
            return base

        return kw

    _raises_alike(monkeypatch, sm, partly_over_logits(sm, "labels"), ValueError, "overlaps an input")
    _raises_alike(monkeypatch, sg, partly_over_logits(sg, "targets"), ValueError, "overlaps an input")

    def sigmoid_out_and_grad_both_logits():
        z = np.zeros((6, 5), np.float32)
        return dict(logits=z, targets=z.copy(), reduction="none", return_grad=True, out=z, grad_out=z)

    _raises_alike(monkeypatch, sg, sigmoid_out_and_grad_both_logits, ValueError, "must not overlap")

    def softmax_grad_over_targets_memory():
        # the gradient over the labels' bytes (int32 labels, float32 gradient of the same size)
        base = np.zeros(30, np.int32)
        y = base[:6]
        y[:] = y0
        return dict(logits=z0.copy(), labels=y, return_grad=True, grad_out=base.view(np.float32).reshape(6, 5))

    _raises_alike(monkeypatch, sm, softmax_grad_over_targets_memory, ValueError, "overlaps")


# ---- the weighting options on the fast path (weight, sample_weight, ignore_index) ----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (5,)])
def test_weighted_same_bits(monkeypatch, rng, dtype, wtype, reduction, shape):
    z = _logits(rng, shape, dtype, extremes=False)
    rows, C = shape[:-1], shape[-1]
    y = rng.integers(0, C, rows)
    y_ign = np.where(rng.random(rows) < 0.3, -100, y)
    w = (rng.random(C) * 3).astype(wtype)
    w[0] = 0.0  # a class of weight 0
    sw = rng.random(rows).astype(wtype) if rows else np.asarray(rng.random(), dtype=wtype)
    for kw, labels in [
        (dict(weight=w), y),
        (dict(sample_weight=sw), y),
        (dict(ignore_index=-100), y_ign),
        (dict(weight=w, sample_weight=sw, ignore_index=-100), y_ign),
        (dict(weight=w, ignore_index=3), y),  # ignore_index a valid class
    ]:
        for rg in (False, True):
            got = _both(monkeypatch, xent.softmax_cross_entropy, z, labels, reduction=reduction, return_grad=rg, **kw)
            if reduction == "mean":
                assert np.isfinite(got[0] if rg else got)


def test_weighted_against_a_float64_reference(monkeypatch, rng):
    # the fast path's weighted mean against the formula (PyTorch's): sum(w[y] sw l) / sum(w[y] sw)
    z = rng.standard_normal((50, 9)) * 3
    y = rng.integers(0, 9, 50)
    y[::7] = -1
    w, sw = rng.random(9) + 0.1, rng.random(50)
    with monkeypatch.context() as m:
        spy = Spy(m)
        loss, grad = xent.softmax_cross_entropy(z, y, weight=w, sample_weight=sw, ignore_index=-1, return_grad=True)
        assert spy.last()
    keep = y != -1
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    yy = np.where(keep, y, 0)
    rw = np.where(keep, w[yy] * sw, 0.0)
    rl = lse - z[np.arange(50), yy]
    np.testing.assert_allclose(loss, (rw * rl).sum() / rw.sum(), rtol=1e-13)
    p = np.exp(z - lse[:, None])
    p[np.arange(50), yy] -= 1
    np.testing.assert_allclose(grad, p * (rw / rw.sum())[:, None], rtol=1e-12, atol=1e-16)


def test_weighted_edge_cases_same_bits(monkeypatch, rng):
    z = rng.standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1])
    # every row ignored, or of weight 0: a "mean" of 0.0 and a zero gradient, on both paths
    for kw, labels in [(dict(ignore_index=7), np.full(6, 7)), (dict(sample_weight=np.zeros(6, np.float32)), y),
                       (dict(weight=np.zeros(4)), y)]:
        loss, grad = _both(monkeypatch, xent.softmax_cross_entropy, z, labels, return_grad=True, **kw)
        assert loss == 0.0 and not grad.any()
    # subnormal float32 weights (their sum's inverse overflows float32) and huge ones: the
    # general path rescales them, the fast path declines
    for w in (np.full(4, 1e-45, np.float32), np.full(4, 1e38, np.float32), np.full(4, 3e38)):
        _both(monkeypatch, xent.softmax_cross_entropy, z, y, weight=w, return_grad=True, expect_fast=False)
        _both(monkeypatch, xent.softmax_cross_entropy, z, y, sample_weight=w[[0, 1, 2, 3, 0, 1]], return_grad=True,
              expect_fast=False)
    # huge weights without a mean need no rescaling: taken
    _both(monkeypatch, xent.softmax_cross_entropy, z, y, weight=np.full(4, 1e38, np.float32), reduction="sum",
          return_grad=True)
    # a float64 weight that is tiny in float32 but not 0 there either
    _both(monkeypatch, xent.softmax_cross_entropy, z, y, weight=np.array([1e-40, 1.0, 2.0, 0.5]), return_grad=True)


def test_declined_weights_take_the_general_path(monkeypatch, rng):
    z = rng.standard_normal((6, 4))
    y = np.array([0, 1, 2, 3, 0, 1])
    w = rng.random(4) + 0.5
    sw = rng.random(6) + 0.5
    declined = [
        dict(weight=w.tolist()), dict(weight=np.array([1, 2, 3, 4])), dict(weight=w.astype(np.float16)),
        dict(weight=w.astype(">f8")), dict(weight=np.repeat(w, 2)[::2]), dict(sample_weight=sw.tolist()),
        dict(sample_weight=np.repeat(sw, 2)[::2]), dict(sample_weight=sw.astype(np.int8)),
        dict(ignore_index=np.int64(3)), dict(ignore_index=True), dict(weight=w, axis=1), dict(z_loss=np.float32(0.1)),
        dict(label_smoothing=np.float32(0.1)), dict(softcap=np.float32(3.0)), dict(softcap=True),
        dict(weight=w, check_finite=True),
    ]
    for kw in declined:
        _both(monkeypatch, xent.softmax_cross_entropy, z, y, return_grad=True, expect_fast=False, **kw)


def _raise_on_both_paths(monkeypatch, z, y, bad, fn=xent.softmax_cross_entropy):
    """Each (kwargs, exception, message) of ``bad`` raises the same error from ``fn(z, y,
    **kwargs)`` whether the fast binding is there or declines, and no call returns a result
    from it."""
    for kw, exc, what in bad:
        for decline in (False, True):
            with monkeypatch.context() as m:
                spy = Spy(m, decline=decline)
                with pytest.raises(exc, match=what):
                    fn(z, y, **kw)
                assert not any(spy.taken)


def _bad_weights(sw_wrong_shape):
    """Weights both paths must reject alike (4 samples of 3 classes, float32 logits)."""
    return [
        (dict(weight=np.array([1.0, -1.0, 1.0])), ValueError, r"weight\[1\] = -1.0: weights must be finite and >= 0"),
        (dict(weight=np.array([1.0, np.nan, 1.0])), ValueError, r"weight\[1\] = nan"),
        (dict(weight=np.array([1.0, 1e300, 1.0])), ValueError, r"weight\[1\] = inf"),  # inf in float32
        (dict(weight=np.ones(4)), ValueError, "weight has shape"),
        (dict(sample_weight=np.array([1.0, 1.0, np.inf, 1.0])), ValueError, r"sample_weight\[2\] = inf"),
        (dict(sample_weight=np.ones(sw_wrong_shape)), ValueError, "sample_weight has shape"),
    ]


def test_bad_weights_raise_the_same_errors(monkeypatch):
    z = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 2, 0])
    bad = [
        *_bad_weights((4, 1)),
        (dict(ignore_index=2**63), ValueError, "ignore_index must fit in int64"),
        (dict(ignore_index=1.0), TypeError, "ignore_index must be an integer"),
    ]
    _raise_on_both_paths(monkeypatch, z, y, bad)
    # a label out of range (other than ignore_index) is still the general path's error
    with pytest.raises(ValueError, match=r"labels\[3\] = 5 is out of range"):
        xent.softmax_cross_entropy(z, np.array([0, -100, 2, 5]), ignore_index=-100, weight=np.ones(3))


def _weighted_grad_out(monkeypatch, rng, fn, second):
    """fn(z, second, weight, sample_weight, grad_out=g) on both paths (8 x 5 logits); returns z, w, sw."""
    z = rng.standard_normal((8, 5))
    w = rng.random(5) + 0.5
    sw = rng.random(8) + 0.5
    g = np.empty_like(z)
    _, got = _both(monkeypatch, fn, z, second, weight=w, sample_weight=sw, return_grad=True, grad_out=g)
    assert got is g or got.tobytes() == g.tobytes()
    return z, w, sw


def test_weighted_buffers(monkeypatch, rng):
    y = rng.integers(0, 5, 8)
    z, w, sw = _weighted_grad_out(monkeypatch, rng, xent.softmax_cross_entropy, y)
    # a buffer over a weight or a sample weight: declined, and the general path's error
    buf = np.empty(5 + 8 * 5)
    wb = buf[:5]
    wb[:] = w
    for kw in (dict(weight=wb), dict(sample_weight=np.empty(48)[:8])):
        if "sample_weight" in kw:
            kw["sample_weight"][:] = sw
        gbuf = (buf if "weight" in kw else kw["sample_weight"].base)[:40].reshape(8, 5)
        with monkeypatch.context() as m:
            spy = Spy(m)
            with pytest.raises(ValueError, match="grad_out overlaps"):
                xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=gbuf, **kw)
            assert spy.taken == [False]
    rows = np.empty(8)
    out = _both(monkeypatch, xent.softmax_cross_entropy, z, y, weight=w, reduction="none", out=rows)
    assert out.tobytes() == rows.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 10, 40])
def test_scalar_options_same_bits(monkeypatch, rng, dtype, C):
    # z_loss, label_smoothing and softcap (floats, ints, np.float64) alone and with the weights
    z = _logits(rng, (12, C), dtype, extremes=True)
    y = rng.integers(0, C, 12)
    y[3] = -100
    w = rng.random(C) + 0.25
    sw = rng.random(12).astype(dtype)
    scalars = [dict(z_loss=1e-3), dict(z_loss=2), dict(label_smoothing=0.1), dict(label_smoothing=1),
               dict(label_smoothing=np.float64(0.3)), dict(softcap=5.0), dict(softcap=30),
               dict(z_loss=1e-4, label_smoothing=0.2, softcap=4.0)]
    for sc in scalars:
        for extra in ({}, dict(weight=w, sample_weight=sw, ignore_index=-100)):
            labels = y if extra else np.where(y < 0, 0, y)
            for red in ("mean", "none"):
                _both(monkeypatch, xent.softmax_cross_entropy, z, labels, reduction=red, return_grad=True,
                      **sc, **extra)


def test_scalar_options_bad_values_raise_the_same_errors(monkeypatch):
    z = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 2, 0])
    bad = [
        (dict(z_loss=-1.0), ValueError, "z_loss must be finite and >= 0"),
        (dict(z_loss=float("nan")), ValueError, "z_loss"),
        (dict(z_loss=float("inf")), ValueError, "z_loss"),
        (dict(z_loss="0.1"), TypeError, "z_loss must be a real number"),
        (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\]"),
        (dict(label_smoothing=-0.1), ValueError, "label_smoothing"),
        (dict(label_smoothing=None), TypeError, "label_smoothing must be a real number"),
        (dict(softcap=0.0), ValueError, "softcap must be None or a finite number > 0"),
        (dict(softcap=-3), ValueError, "softcap"),
        (dict(softcap=float("inf")), ValueError, "softcap"),
    ]
    _raise_on_both_paths(monkeypatch, z, y, bad)


def test_smoothing_with_huge_class_weights_declines(monkeypatch, rng):
    # class weights acting inside rows whose sum nears float32's range are divided by a power
    # of two on the general path first (inrow_shift): the fast path leaves them to it
    z = rng.standard_normal((5, 6)).astype(np.float32)
    y = rng.integers(0, 6, 5)
    w = np.full(6, 1e37, np.float32)
    for red in ("sum", "none"):
        _both(monkeypatch, xent.softmax_cross_entropy, z, y, weight=w, label_smoothing=0.1, reduction=red,
              return_grad=True, expect_fast=False)
        _both(monkeypatch, xent.softmax_cross_entropy, z, y, weight=w, reduction=red, return_grad=True)


# ---- sigmoid_cross_entropy's options on the fast path ----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (5,), (1, 1), (130, 130)])
def test_sigmoid_options_same_bits(monkeypatch, rng, dtype, wtype, reduction, shape):
    z = _logits(rng, shape, dtype, extremes=True)
    t = rng.random(shape).astype(dtype)
    C = shape[-1]
    w = (rng.random(C) * 3).astype(wtype)
    w[0] = 0.0  # a class of weight 0 (its infinite and NaN losses count 0)
    pw = (rng.random(C) * 4).astype(wtype)
    sw_shape = shape[:-1] if len(shape) >= 2 else shape
    sw = rng.random(sw_shape).astype(wtype)
    sw.reshape(-1)[-1] = 0.0  # a sample of weight 0
    for kw in [
        dict(weight=w), dict(pos_weight=pw), dict(sample_weight=sw), dict(label_smoothing=0.1),
        dict(label_smoothing=1), dict(label_smoothing=np.float64(0.3)), dict(softcap=5.0), dict(softcap=30),
        dict(weight=w, pos_weight=pw), dict(weight=w, sample_weight=sw),
        dict(weight=w, pos_weight=pw, sample_weight=sw, label_smoothing=0.2),
        dict(weight=w, pos_weight=pw, sample_weight=sw, label_smoothing=0.05, softcap=4.0),
    ]:
        for rg in (False, True):
            _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, reduction=reduction, return_grad=rg, **kw)


def test_sigmoid_options_against_a_float64_reference(monkeypatch, rng):
    # the fast path's weighted mean against the formula (PyTorch's BCEWithLogits weight and
    # pos_weight, scikit-learn's sample weights): sum(sw w l) / (sum(sw) C)
    R, C = 40, 6
    z = rng.standard_normal((R, C)) * 3
    t = rng.random((R, C))
    w, pw, sw = rng.random(C) + 0.1, rng.random(C) * 3, rng.random(R)
    eps = 0.1
    with monkeypatch.context() as m:
        spy = Spy(m)
        loss, grad = xent.sigmoid_cross_entropy(z, t, weight=w, pos_weight=pw, sample_weight=sw,
                                                label_smoothing=eps, return_grad=True)
        assert spy.last()
    ts = (1 - eps) * t + eps / 2
    b = 1 + (pw - 1) * ts  # PyTorch's log_weight
    el = (1 - ts) * z + b * np.logaddexp(0.0, -z)
    ew = w * sw[:, None]
    n = sw.sum() * C
    np.testing.assert_allclose(loss, (ew * el).sum() / n, rtol=1e-13)
    sig_neg = 1 / (1 + np.exp(z))
    np.testing.assert_allclose(grad, ew * ((1 - ts) - b * sig_neg) / n, rtol=1e-11, atol=1e-16)


def test_sigmoid_weighted_edge_cases_same_bits(monkeypatch, rng):
    z = rng.standard_normal((6, 4)).astype(np.float32)
    t = rng.random((6, 4)).astype(np.float32)
    # total sample weight 0: a "mean" of 0.0 and a zero gradient, on both paths
    loss, grad = _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, sample_weight=np.zeros(6, np.float32),
                       return_grad=True)
    assert loss == 0.0 and not grad.any()
    # subnormal float32 sample weights (their sum's inverse overflows float32) and huge ones:
    # the general path rescales them for a mean, the fast path declines
    for sw in (np.full(6, 1e-45, np.float32), np.full(6, 1e38, np.float32), np.full(6, 3e38)):
        _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, sample_weight=sw, return_grad=True, expect_fast=False)
        _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, sample_weight=sw, reduction="sum", return_grad=True)
    # huge class weights bound the products with the sample weights: declined for a mean
    big = np.full(4, 1e30, np.float32)
    _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, weight=big, sample_weight=np.full(6, 1e9, np.float32),
          return_grad=True, expect_fast=False)
    _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, weight=big, return_grad=True)
    # a float64 weight that is tiny in float32 but not 0 there either
    _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, weight=np.array([1e-40, 1.0, 2.0, 0.5]), return_grad=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (5,), (1, 1), (130, 130)])
def test_sigmoid_last_axis_same_bits(monkeypatch, rng, reduction, shape):
    # axis given as the last one: the loss summed over it (one per row for "none"), the mean
    # over rows (or over the summed sample weights), on the fast path
    for dtype in (np.float32, np.float64):
        z = _logits(rng, shape, dtype, extremes=True)
        t = rng.random(shape).astype(dtype)
        C = shape[-1]
        w = (rng.random(C) * 3).astype(dtype)
        w[0] = 0.0
        sw = rng.random(shape[:-1]).astype(dtype)
        if sw.size:
            sw.reshape(-1)[-1] = 0.0
        for axis in (-1, len(shape) - 1):
            for kw in [{}, dict(weight=w), dict(sample_weight=sw), dict(pos_weight=w, label_smoothing=0.1),
                       dict(weight=w, sample_weight=sw, softcap=4.0)]:
                for rg in (False, True):
                    _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, axis=axis, reduction=reduction,
                          return_grad=rg, **kw)
    # the caller's buffers: a loss per row and the gradient
    z = rng.standard_normal(shape)
    t = rng.random(shape)
    _both_fresh(monkeypatch, xent.sigmoid_cross_entropy, lambda: dict(
        logits=z.copy(), targets=t.copy(), axis=-1, reduction="none", return_grad=True, out=np.empty(shape[:-1]),
        grad_out=np.empty(shape)))


def test_sigmoid_last_axis_against_a_float64_reference(monkeypatch, rng):
    # the mean over rows: sum(sw w l) / sum(sw), the loss summed over the class axis
    R, C = 40, 6
    z = rng.standard_normal((R, C)) * 3
    t = rng.random((R, C))
    w, sw = rng.random(C) + 0.1, rng.random(R)
    with monkeypatch.context() as m:
        spy = Spy(m)
        loss, grad = xent.sigmoid_cross_entropy(z, t, axis=1, weight=w, sample_weight=sw, return_grad=True)
        assert spy.last()
        rows = xent.sigmoid_cross_entropy(z, t, axis=-1, weight=w, reduction="none")
        assert spy.last()
    el = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(rows, (w * el).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(loss, (sw[:, None] * w * el).sum() / sw.sum(), rtol=1e-13)
    np.testing.assert_allclose(grad, sw[:, None] * w * (1 / (1 + np.exp(-z)) - t) / sw.sum(), rtol=1e-11,
                               atol=1e-16)


def test_sigmoid_declined_options_take_the_general_path(monkeypatch, rng):
    z = rng.standard_normal((6, 4))
    t = rng.random((6, 4))
    w = rng.random(4) + 0.5
    sw = rng.random(6) + 0.5
    declined = [
        dict(weight=w.tolist()), dict(weight=np.array([1, 2, 3, 4])), dict(weight=w.astype(np.float16)),
        dict(weight=w.astype(">f8")), dict(weight=np.repeat(w, 2)[::2]), dict(weight=np.float64(2.0)),
        dict(weight=np.array([2.0])), dict(pos_weight=w.tolist()), dict(pos_weight=np.array(3.0)),
        dict(sample_weight=sw.tolist()), dict(sample_weight=np.repeat(sw, 2)[::2]),
        dict(sample_weight=sw.astype(np.int8)), dict(weight=np.ones(6), axis=0), dict(weight=w, axis=np.int64(1)),
        dict(axis=0), dict(label_smoothing=np.float32(0.1)), dict(label_smoothing=True), dict(softcap=np.float32(3.0)),
        dict(softcap=True), dict(weight=w, check_finite=True),
    ]
    for kw in declined:
        _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, return_grad=True, expect_fast=False, **kw)


def test_sigmoid_bad_options_raise_the_same_errors(monkeypatch):
    z = np.zeros((4, 3), np.float32)
    t = np.full((4, 3), 0.5, np.float32)
    bad = [
        *_bad_weights((4, 3)),
        (dict(pos_weight=np.array([1.0, np.nan, 1.0])), ValueError, r"pos_weight\[1\] = nan"),
        (dict(pos_weight=np.ones(2)), ValueError, "pos_weight has shape"),
        (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\]"),
        (dict(label_smoothing=None), TypeError, "label_smoothing must be a real number"),
        (dict(softcap=0.0), ValueError, "softcap must be None or a finite number > 0"),
        (dict(softcap=float("inf")), ValueError, "softcap"),
        (dict(axis=1.0), TypeError, "axis must be an integer, got 1.0"),
        (dict(axis=-3), ValueError, "axis -3 is out of bounds"),
        (dict(axis=2**70), ValueError, "out of bounds"),
    ]
    _raise_on_both_paths(monkeypatch, z, t, bad, fn=xent.sigmoid_cross_entropy)
    zero = np.zeros((), np.float32)
    _raise_on_both_paths(monkeypatch, zero, zero, [(dict(axis=0), ValueError, "at least one dimension")],
                         fn=xent.sigmoid_cross_entropy)


def test_sigmoid_weighted_buffers(monkeypatch, rng):
    t = rng.random((8, 5))
    z, w, _ = _weighted_grad_out(monkeypatch, rng, xent.sigmoid_cross_entropy, t)
    # the buffers may be the logits or the targets themselves
    for key in ("logits", "targets"):
        def make(key=key):
            kw = dict(logits=z.copy(), targets=t.copy(), weight=w, pos_weight=w, reduction="none", return_grad=True)
            kw["grad_out"] = kw[key]
            return kw

        _both_fresh(monkeypatch, xent.sigmoid_cross_entropy, make)
    # a buffer over a weight: declined, and the general path's error
    buf = np.empty(5 + 8 * 5)
    wb = buf[:5]
    wb[:] = w
    with monkeypatch.context() as m:
        spy = Spy(m)
        with pytest.raises(ValueError, match="grad_out overlaps"):
            xent.sigmoid_cross_entropy(z, t, weight=wb, return_grad=True, grad_out=buf[:40].reshape(8, 5))
        assert spy.taken == [False]


@pytest.mark.parametrize("wdtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [17, 1023, 1025, 5000])
def test_long_weight_vectors_same_bits_and_same_errors(monkeypatch, rng, wdtype, n):
    # weights checked, narrowed and summed in vector passes (kernels/weights-inl.hpp): long
    # enough for full vectors and several blocks, a bad weight inside the vector body
    z = (3 * rng.standard_normal(n)).astype(np.float32)
    t = rng.random(n).astype(np.float32)
    sw = (rng.random(n) + 0.1).astype(wdtype)
    sw[n // 2] = 0.0
    for red in ("mean", "sum", "none"):
        _both(monkeypatch, xent.sigmoid_cross_entropy, z, t, sample_weight=sw, reduction=red, return_grad=True)
    zz = rng.standard_normal((n, 3))
    _both(monkeypatch, xent.softmax_cross_entropy, zz, rng.integers(0, 3, n), sample_weight=sw, return_grad=True)
    bad = []
    for v, shown in ((np.nan, "nan"), (-1.0, "-1.0"), (np.inf, "inf")) + (((1e300, "inf"),) if wdtype == np.float64
                                                                            else ()):
        w = sw.copy()
        w[n // 2 + 1] = v
        bad.append((dict(sample_weight=w), ValueError, rf"sample_weight\[{n // 2 + 1}\] = {shown}"))
    _raise_on_both_paths(monkeypatch, z, t, bad, fn=xent.sigmoid_cross_entropy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_sum_accurate_and_the_same_bits_on_every_isa(rng, isa, dtype):
    # blocks of 1024 in 16 lanes, the blocks compensated: within (1024 / 16 + 6) eps of the
    # exact sum, and the order of the additions the same on every ISA
    scalar = {}
    for n in (0, 1, 15, 16, 17, 1023, 1024, 1025, 5000, 70001):
        w = np.exp(rng.uniform(-20, 20, n)).astype(dtype)
        got = _core.weight_sum(w)
        exact = math.fsum(w.astype(np.float64).tolist())
        assert abs(got - exact) <= 70 * np.finfo(np.float64).eps * exact
        before = _core.config()["isa"]
        try:
            _core.set_isa("scalar")
            scalar[n] = _core.weight_sum(w)
        finally:
            _core.set_isa(before)
        assert got == scalar[n], n
    assert _core.weight_sum(np.full(40, 1e307)) == np.inf  # overflow: +inf, never NaN


# ---- the poly-1 and focal losses of integer labels on the fast path ----

FACTOR_FNS = [(xent.softmax_focal_loss, "gamma"), (xent.poly1_cross_entropy, "epsilon")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (64, 10), (7, 3), (5, 41), (3, 4, 5), (10,), (130, 130), (20, 300)])
@pytest.mark.parametrize("fn, pname", FACTOR_FNS)
def test_factor_losses_same_bits(monkeypatch, rng, dtype, shape, fn, pname):
    # the lanes (C <= 128 float32, 80 float64) and the row kernels, with every option the
    # binding takes: weights, ignore_index, softcap, focal's alpha (either float type)
    z = _logits(rng, shape, dtype, extremes=True)
    rows, C = shape[:-1], shape[-1]
    y = rng.integers(0, C, rows)
    w = rng.random(C) + 0.25
    sw = rng.random(rows).astype(dtype) if rows else np.asarray(rng.random(), dtype=dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    extras = [{}, dict(weight=w, sample_weight=sw), dict(softcap=5.0), dict(ignore_index=int(np.ravel(y)[0]))]
    if pname == "gamma":
        alpha = rng.random(C).astype(dtype)
        alpha[0] = 0.0  # a_y = 0: the row's loss 0
        extras += [dict(alpha=alpha), dict(alpha=alpha.astype(other), weight=w, sample_weight=sw)]
    for p in ([0.0, 0.5, 2.0] if pname == "gamma" else [2.0, -1.0]):
        for extra in extras:
            for red in ("mean", "sum", "none"):
                _both(monkeypatch, fn, z, y, reduction=red, return_grad=True, **{pname: p}, **extra)
        _both(monkeypatch, fn, z, y, n_threads=1, **{pname: p})  # the forward alone, the default mean


@pytest.mark.parametrize("fn, pname", FACTOR_FNS)
def test_factor_losses_buffers(monkeypatch, rng, fn, pname):
    z0 = _logits(rng, (9, 6), np.float32, True)
    y0 = rng.integers(0, 6, 9)
    for in_place in (False, True):
        def make(in_place=in_place):
            z = z0.copy()
            return dict(logits=z, labels=y0.copy(), reduction="none", return_grad=True, out=np.empty(9, np.float32),
                        grad_out=z if in_place else np.empty_like(z))
        _both_fresh(monkeypatch, fn, make)


def test_factor_losses_decline_to_the_general_path(monkeypatch, rng):
    z = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    t = rng.random((6, 4)).astype(np.float32)
    focal = xent.softmax_focal_loss
    for kw in (dict(alpha=0.25), dict(alpha=[0.1, 0.2, 0.3, 0.4]), dict(alpha=np.arange(4)),  # a number, a list, ints
               dict(alpha=np.full(4, 1e37, np.float32)),  # divided by a power of two first (inrow_shift)
               dict(axis=1), dict(check_finite=True), dict(gamma=2)):  # (an int gamma: float() on both paths)
        _both(monkeypatch, focal, z, y, return_grad=True, expect_fast="gamma" in kw, **kw)
    for fn, _ in FACTOR_FNS:
        _both(monkeypatch, fn, z, t, return_grad=True, expect_fast=False)  # targets
        _both(monkeypatch, fn, z, y.astype(np.uint8), expect_fast=False)  # other label types


@pytest.mark.parametrize("fn, pname", FACTOR_FNS)
def test_factor_losses_raise_the_same_errors(monkeypatch, fn, pname):
    z = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 2, 0])
    bad = [
        ({pname: np.nan}, ValueError, pname),
        (dict(softcap=0.0), ValueError, "softcap"),
        (dict(reduction="avg"), ValueError, "reduction"),
        (dict(n_threads=0), ValueError, "n_threads"),
        (dict(weight=np.array([1.0, -1.0, 1.0])), ValueError, "weight"),
        (dict(grad_out=np.empty((4, 2), np.float32), return_grad=True), ValueError, "grad_out"),
    ]
    if pname == "gamma":
        bad += [(dict(alpha=np.array([1.0, -1.0, 1.0])), ValueError, "alpha"),
                (dict(alpha=np.array([1.0, np.nan, 1.0])), ValueError, "alpha"),
                (dict(alpha=np.ones(4)), ValueError, "alpha")]
    _raise_on_both_paths(monkeypatch, z, y, bad, fn=fn)
    y[1] = 3
    _raise_on_both_paths(monkeypatch, z, y, [({}, ValueError, r"labels\[1\] = 3 is out of range")], fn=fn)


def test_factor_losses_grad_out_over_alpha_raises(monkeypatch, rng):
    # a gradient written over focal's alpha would change the alpha of the rows after it
    z = rng.standard_normal((4, 6)).astype(np.float32)
    y = rng.integers(0, 6, 4)
    buf = np.zeros(48, np.float32)
    alpha = buf[24:30]
    alpha[:] = rng.random(6)
    for decline in (False, True):
        with monkeypatch.context() as m:
            spy = Spy(m, decline=decline)
            with pytest.raises(ValueError, match="grad_out overlaps"):
                xent.softmax_focal_loss(z, y, alpha=alpha, return_grad=True, grad_out=buf[20:44].reshape(4, 6))
            assert not any(spy.taken)


def test_bindings_are_positional_builtins():
    # the entries are METH_FASTCALL builtins (no pybind11 dispatcher): every argument given,
    # by position; anything else is a TypeError naming the entry, not a crash
    z = np.zeros((2, 3), dtype=np.float32)
    y = np.zeros(2, dtype=np.int64)
    plain = (z, y, "mean", False, None, None, None, None, None, None, 0.0, 0.0, None)
    assert _core.softmax_xent_fast(*plain) == pytest.approx(math.log(3))
    for name, n in (("softmax_xent_fast", 13), ("softmax_factor_fast", 14), ("sigmoid_xent_fast", 13),
                    ("softmax_norm_fast", 3)):
        fn = getattr(_core, name)
        assert fn.__name__ == name and fn.__module__ == "xent._core"
        assert len(inspect.signature(fn).parameters) == n
        with pytest.raises(TypeError, match=rf"{name}\(\) takes exactly {n} positional arguments \({n - 1} given\)"):
            fn(*([None] * (n - 1)))
        with pytest.raises(TypeError, match="keyword"):
            fn(*([None] * n), extra=1)
    with pytest.raises(TypeError, match="op must be a SoftmaxOp"):
        _core.softmax_norm_fast("logsumexp", z, None)
    with pytest.raises(ValueError, match="op must be logsumexp, softmax or log_softmax"):
        _core.softmax_norm_fast(_core.SoftmaxOp.kl_div, z, None)
    # a reduction given as a string equal to, but not the same object as, "mean"
    mean = "".join(["me", "an"])
    assert mean is not sys.intern("mean")
    assert _core.softmax_xent_fast(z, y, mean, *plain[3:]) == _core.softmax_xent_fast(*plain)
    assert _core.softmax_xent_fast(z, y, "average", *plain[3:]) is None
