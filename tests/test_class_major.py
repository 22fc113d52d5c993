"""Class-major rows: a Fortran-order array or a transposed view, whose class stride is not 1
while adjacent rows are adjacent in memory. The softmax row kernels take such rows in blocks
transposed in registers (units-inl.hpp, gather_rows / scatter_rows), the sigmoid losses move
their units' rows the same way, and the sigmoid Hessian walks its operands in memory order
(api.cpp, memory_order). Each gives the bits of the same call on C-order arrays: for every op
and option, row counts around the block sizes (64 float32 rows, 32 float64), classes around
the vector widths, outputs in either order and in place, several threads; no input modified."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL

DTYPES = [np.float32, np.float64]


def _views(a):
    """``a``'s values class-major: Fortran order, and a transposed view of a C-order array
    (for 3-d: the class axis of a (A, C, B) array moved last, rows adjacent along B)."""
    if a.ndim == 2:
        return {"F": np.asfortranarray(a), "T": np.ascontiguousarray(a.T).T}
    return {"moved": np.moveaxis(np.ascontiguousarray(np.moveaxis(a, -1, 1)), 1, -1),
            "F": np.asfortranarray(a)}


def _data(rng, shape, dtype):
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    z.reshape(-1, shape[-1])[::5, 3] = -np.inf  # masked classes
    y = rng.integers(0, shape[-1], shape[:-1])
    y.reshape(-1)[::4] = 1
    p = rng.random(shape).astype(dtype) + 0.1
    t = (p / p.sum(axis=-1, keepdims=True)).astype(dtype)
    w = (rng.random(shape[-1]) + 0.5).astype(dtype)
    sw = rng.random(shape[:-1]).astype(dtype)
    sw.reshape(-1)[::7] = 0
    return z, y, t, w, sw


def _calls(z, y, t, w, sw, nt):
    kw = dict(return_grad=True, n_threads=nt)
    return {
        "logsumexp": lambda z: xent.logsumexp(z, n_threads=nt),
        "softmax": lambda z: xent.softmax(z, n_threads=nt),
        "log_softmax": lambda z: xent.log_softmax(z, n_threads=nt),
        "labels": lambda z: xent.softmax_cross_entropy(z, y, **kw),
        "labels none": lambda z: xent.softmax_cross_entropy(z, y, reduction="none", **kw),
        "labels weighted": lambda z: xent.softmax_cross_entropy(
            z, y, weight=w, sample_weight=sw, ignore_index=1, z_loss=0.01, reduction="none", **kw),
        "labels smoothing": lambda z: xent.softmax_cross_entropy(z, y, weight=w, label_smoothing=0.1, **kw),
        "labels softcap": lambda z: xent.softmax_cross_entropy(z, y, softcap=5.0, reduction="sum", **kw),
        "targets": lambda z: xent.softmax_cross_entropy(z, t, weight=w, **kw),
        "poly1": lambda z: xent.poly1_cross_entropy(z, y, **kw),
        "focal": lambda z: xent.softmax_focal_loss(z, y, gamma=2.0, **kw),
        "nll": lambda z: xent.nll_loss(np.where(np.isinf(z), -50, z), y, weight=w, **kw),
        "kl": lambda z: xent.kl_divergence(np.where(np.isinf(z), -50, z), t, **kw),
    }


def _same(a, b):
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _same(u, v)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [
        (1, 140), (7, 129), (67, 133), (130, 160), (33, 1000), (5, 6, 131), (3, 70, 137),
        # C <= 128 float32, 80 float64: the rows-in-lanes kernel, a vector per class for adjacent rows
        (67, 9), (130, 32), (64, 40), (5, 6, 16), (9, 8), (67, 45), (33, 64), (64, 96), (67, 128),
    ],
)
def test_softmax_ops_class_major_give_the_c_order_bits(isa, rng, dtype, shape):
    z, y, t, w, sw = _data(rng, shape, dtype)
    for name, f in _calls(z, y, t, w, sw, 1).items():
        want = f(z)
        for lay, v in _views(z).items():
            keep = v.copy()
            got = f(v)
            try:
                _same(got, want)
            except AssertionError as e:
                raise AssertionError(f"{name}, {lay}") from e
            np.testing.assert_array_equal(v, keep, err_msg=f"{name}: input modified")
    # the reference on one op: the values themselves, not only their agreement
    l_ref, g_ref = ref.softmax_xent_labels(z.reshape(-1, shape[-1]), y.reshape(-1))
    l, g = xent.softmax_cross_entropy(np.asfortranarray(z), y, reduction="none", return_grad=True)
    np.testing.assert_allclose(l.reshape(-1), l_ref, **LOSS_TOL[dtype])
    np.testing.assert_allclose(g.reshape(-1, shape[-1]), g_ref, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_class_major_outputs_in_place_and_threads(isa, rng, dtype, n_threads):
    """Many rows over several tasks; gradients into class-major and C-order buffers and into
    the logits themselves (grad_out=logits); C-order logits into a class-major gradient."""
    shape = (3001, 300)
    z, y, t, w, sw = _data(rng, shape, dtype)
    want_l, want_g = xent.softmax_cross_entropy(z, y, weight=w, sample_weight=sw, reduction="none",
                                                return_grad=True, n_threads=1)
    zf = np.asfortranarray(z)
    for gout in (np.empty(shape, dtype, order="F"), np.empty(shape, dtype)):
        lo = np.empty(shape[0], dtype)
        l, g = xent.softmax_cross_entropy(zf, y, weight=w, sample_weight=sw, reduction="none", return_grad=True,
                                          out=lo, grad_out=gout, n_threads=n_threads)
        assert g is gout and l is lo
        _same((l, g), (want_l, want_g))
    # C-order logits, a class-major gradient buffer
    g = np.empty(shape, dtype, order="F")
    _same(xent.softmax_cross_entropy(z, y, weight=w, sample_weight=sw, reduction="none", return_grad=True,
                                     grad_out=g, n_threads=n_threads), (want_l, want_g))
    # in place over the logits (each block read before its gradient is written)
    zi = zf.copy(order="F")
    l, g = xent.softmax_cross_entropy(zi, y, weight=w, sample_weight=sw, reduction="none", return_grad=True,
                                      grad_out=zi, n_threads=n_threads)
    assert g is zi
    _same((l, zi), (want_l, want_g))
    # class-major soft targets, into a class-major buffer
    want = xent.softmax_cross_entropy(z, t, label_smoothing=0.05, return_grad=True, n_threads=1)
    g = np.empty(shape, dtype, order="F")
    got = xent.softmax_cross_entropy(zf, np.asfortranarray(t), label_smoothing=0.05, return_grad=True, grad_out=g,
                                     n_threads=n_threads)
    _same(got, want)
    sm = np.empty(shape, dtype, order="F")
    _same(xent.softmax(zf, out=sm, n_threads=n_threads), xent.softmax(z, n_threads=1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8192, 32), (512, 37), (100, 300), (3, 5000), (17, 9)])
def test_sigmoid_class_major_rows(isa, rng, dtype, shape):
    """The sigmoid losses' units of whole rows moved from and to class-major arrays."""
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.random(shape).astype(dtype)
    w = (rng.random(shape[-1]) + 0.5).astype(dtype)
    for kw in ({}, dict(axis=-1), dict(weight=w, reduction="none"), dict(axis=-1, reduction="none")):
        want = xent.sigmoid_cross_entropy(z, t, return_grad=True, **kw)
        zf, tf = np.asfortranarray(z), np.asfortranarray(t)
        g = np.empty(shape, dtype, order="F")
        got = xent.sigmoid_cross_entropy(zf, tf, return_grad=True, grad_out=g, **kw)
        assert got[1] is g
        _same(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_hessian_any_memory_order(isa, rng, dtype):
    """Elementwise: every permutation of a 3-d array's axes, reversed strides, operands in
    orders that disagree, broadcast weights; the bits of the C-order call."""
    shape = (9, 20, 13)
    z = (rng.standard_normal(shape) * 5).astype(dtype)
    t = rng.random(shape).astype(dtype)
    sws = [rng.random((9, 20, 1)).astype(dtype), rng.random((1, 20, 13)).astype(dtype), rng.random(13).astype(dtype)]
    for sw in [None, *sws]:
        want = xent.sigmoid_hessian(z, t, sample_weight=sw, return_grad=True)
        for perm in [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1), (2, 0, 1), (1, 2, 0)]:
            zp = np.ascontiguousarray(z.transpose(perm)).transpose(np.argsort(perm))  # z's values, perm's order
            tp = np.asfortranarray(t) if perm[0] == 2 else t
            h, g = xent.sigmoid_hessian(zp, tp, sample_weight=sw, return_grad=True)
            _same((h, g), want)
            out = np.empty(shape[::-1], dtype).T  # Fortran order whatever zp's
            xent.sigmoid_hessian(zp, sample_weight=sw, out=out)
            _same(out, want[0])
        rev = np.ascontiguousarray(z[::-1, :, ::-1])[::-1, :, ::-1]
        _same(xent.sigmoid_hessian(rev, t, sample_weight=sw, return_grad=True), want)
    # in place over Fortran-order logits; dims of length 1 and more dims than RowSpace holds
    zf = np.asfortranarray(z)
    assert xent.sigmoid_hessian(zf, out=zf) is zf
    _same(zf, xent.sigmoid_hessian(z))
    many = np.asfortranarray(z.reshape((9, 1, 20) + (1,) * 40 + (13,)))
    _same(xent.sigmoid_hessian(many).reshape(shape), xent.sigmoid_hessian(z))


@pytest.mark.parametrize("dtype, C", [(np.float32, 70_000), (np.float64, 40_000), (np.float64, 30_000)])
def test_long_class_major_rows(isa, rng, dtype, C):
    """Rows too long for a block of 8 within the block budget keep the row path (bounded
    scratch); shorter ones take blocks of fewer rows. Both: the C-order bits."""
    z, y, t, w, sw = _data(rng, (9, C), dtype)
    for name, f in _calls(z, y, t, w, sw, 2).items():
        if name in ("labels", "labels weighted", "targets", "softmax"):
            _same(f(np.asfortranarray(z)), f(z))
