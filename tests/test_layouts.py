"""Memory layouts that must work, not fail: big-endian, misaligned, strided, transposed,
negative-stride, zero-stride (broadcast) and read-only arrays, in every array argument, give
exactly the results of the plain C-contiguous call, and no input is ever modified.
64-bit indexing: arrays of more than 2**31 elements and offsets beyond 2**31 elements, on
calloc'ed zero pages (untouched pages cost no memory), with known closed-form answers."""
import numpy as np
import pytest

import xent

R, C = 6, 37


def _calls(x, y, t, w, sw):
    """Every public function with every array argument, return_grad where it exists."""
    return {
        "logsumexp": lambda: xent.logsumexp(x, axis=1),
        "softmax": lambda: xent.softmax(x, axis=1),
        "log_softmax": lambda: xent.log_softmax(x, axis=1),
        "xent_labels": lambda: xent.softmax_cross_entropy(
            x, y, axis=1, weight=w, sample_weight=sw, ignore_index=3, z_loss=0.1, label_smoothing=0.2,
            reduction="none", return_grad=True),
        "xent_targets": lambda: xent.softmax_cross_entropy(
            x, t, axis=1, weight=w, sample_weight=sw, reduction="sum", return_grad=True),
        "sigmoid": lambda: xent.sigmoid_cross_entropy(x, t, reduction="none", return_grad=True),
        "sigmoid_axis": lambda: xent.sigmoid_cross_entropy(x, t, axis=1, reduction="none", return_grad=True),
    }


def _data(dtype):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((R, C, 2)) * 3).astype(dtype)
    x[0, 5, :] = -np.inf  # a mask
    y = rng.integers(0, C, (R, 2))
    y[1, 0] = 3  # ignored
    t = rng.random((R, C, 2)).astype(dtype)
    w = rng.random(C).astype(dtype) + 0.5
    sw = rng.random((R, 2)).astype(dtype)
    return x, y, t, w, sw


def _swapped(a):
    return a.astype(a.dtype.newbyteorder("S"))


def _misaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = np.ndarray(a.shape, a.dtype, buffer=buf.data, offset=1)
    m[...] = a
    assert not m.flags.aligned
    return m


def _strided(a):
    big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def _reversed(a):
    return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[(slice(None, None, -1),) * a.ndim]


def _fortran(a):
    return np.asfortranarray(a)


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {"big_endian": _swapped, "misaligned": _misaligned, "strided": _strided, "negative_strides": _reversed,
           "fortran": _fortran, "read_only": _readonly}


def _same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)
    else:
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_in_every_argument_gives_the_plain_result(isa, dtype, layout):
    plain = _data(dtype)
    want = {k: f() for k, f in _calls(*plain).items()}
    for which in range(5):  # one argument at a time in the hostile layout, then all at once
        args = list(plain)
        args[which] = LAYOUTS[layout](args[which])
        for k, f in _calls(*args).items():
            _same(f(), want[k])
    hostile = [LAYOUTS[layout](a) for a in plain]
    copies = [a.copy() for a in hostile]
    for k, f in _calls(*hostile).items():
        _same(f(), want[k])
    for a, b in zip(hostile, copies):  # never modified
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_zero_strides_broadcast_inputs(isa):
    rng = np.random.default_rng(3)
    row = rng.standard_normal(C)
    trow = rng.random(C)
    x = np.broadcast_to(row, (50, C))  # read-only, row stride 0
    t = np.broadcast_to(trow, (50, C))
    y = np.broadcast_to(np.int64(4), (50,))
    one = xent.softmax_cross_entropy(row[None], np.array([4]), reduction="sum")
    assert xent.softmax_cross_entropy(x, y, reduction="sum") == pytest.approx(50 * one, rel=1e-14)
    loss, grad = xent.softmax_cross_entropy(x, t, reduction="none", return_grad=True)
    _same((loss, grad), xent.softmax_cross_entropy(np.array(x), np.array(t), reduction="none", return_grad=True))
    _same(xent.softmax(x), xent.softmax(np.array(x)))
    col = np.broadcast_to(row[:, None], (C, 9))  # class-axis stride 0 with axis=0 in the other call
    _same(xent.logsumexp(np.broadcast_to(row[0], (5, C))), np.full(5, row[0] + np.log(C)))
    _same(xent.log_softmax(col, axis=0), xent.log_softmax(np.array(col), axis=0))
    _same(xent.sigmoid_cross_entropy(x, t, return_grad=True), xent.sigmoid_cross_entropy(np.array(x), np.array(t),
                                                                                       return_grad=True))


def _zero_pages(n, dtype):
    """n zeros that cost no memory until written (calloc'ed pages, read as the zero page)."""
    return np.zeros(n, dtype)


@pytest.mark.parametrize("dtype", [np.float32])
def test_offsets_beyond_2_31_elements_in_every_function(dtype):
    # three rows 2**30 elements apart (the last at offset 2**31 elements: 8 GiB of address
    # space, three pages of memory), in every array argument, inputs and outputs
    n = 2**31 + 4 * C
    step = 2**30
    base = _zero_pages(n, dtype)
    rng = np.random.default_rng(11)
    compact = rng.standard_normal((3, C)).astype(dtype)
    isz = np.dtype(dtype).itemsize

    def far(buf, values=None):
        v = np.lib.stride_tricks.as_strided(buf, shape=(3, C), strides=(step * isz, isz))
        if values is not None:
            v[...] = values
        return v

    x = far(base, compact)
    tbuf = _zero_pages(n, dtype)
    t = far(tbuf, np.abs(compact) / 4)
    for f in (xent.logsumexp, xent.softmax, xent.log_softmax):
        _same(f(x), f(compact))
    out = far(_zero_pages(n, dtype))
    xent.softmax(x, out=out)
    _same(np.array(out), xent.softmax(compact))
    y = np.array([1, C - 1, 0])
    _same(xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True),
          xent.softmax_cross_entropy(compact, y, reduction="none", return_grad=True))
    _same(xent.softmax_cross_entropy(x, t, return_grad=True),
          xent.softmax_cross_entropy(compact, np.array(t), return_grad=True))
    # elementwise: per element (a "mean" would group the float32 partial sums by layout)
    _same(xent.sigmoid_cross_entropy(x, t, reduction="none", return_grad=True),
          xent.sigmoid_cross_entropy(compact, np.array(t), reduction="none", return_grad=True))
    _same(xent.sigmoid_cross_entropy(x, t, axis=1, reduction="none", return_grad=True),
          xent.sigmoid_cross_entropy(compact, np.array(t), axis=1, reduction="none", return_grad=True))


def test_more_than_2_31_elements_with_skipped_rows():
    # (65537, 32768) float32: 2**31 + 2**15 elements; rows of weight 0 or ignored cost no pass
    # over their logits, so only the first and last rows are computed; the last starts at
    # element 2**31 (a 32-bit offset would read zeros there, and give log(C) instead)
    rows, cols = 2**16 + 1, 2**15
    z = _zero_pages(rows * cols, np.float32).reshape(rows, cols)
    assert z.size > 2**31
    tail = np.linspace(-3, 5, cols, dtype=np.float32)
    z[-1] = tail
    y = np.full(rows, -1)
    y[0], y[-1] = 2, 100
    lse_tail = np.log(np.sum(np.exp(tail.astype(np.float64))))
    want_last = lse_tail - np.float64(tail[100])
    loss = xent.softmax_cross_entropy(z, y, ignore_index=-1, reduction="none")
    assert loss[0] == pytest.approx(np.log(cols), rel=2e-6)
    assert loss[-1] == pytest.approx(want_last, rel=2e-6)
    assert not loss[1:-1].any()
    total = xent.softmax_cross_entropy(z, y, ignore_index=-1, reduction="sum")
    assert total == pytest.approx(np.log(cols) + want_last, rel=2e-6)
    sw = np.zeros(rows, np.float32)
    sw[-1] = 2.0
    y2 = np.where(y < 0, 0, y)
    assert xent.softmax_cross_entropy(z, y2, sample_weight=sw, reduction="sum") == pytest.approx(2 * want_last,
                                                                                               rel=2e-6)


def test_one_row_longer_than_2_31_elements():
    # one row of 2**31 + 64 float32 logits: zeros, then 64 known values; the loss of a label in
    # that tail has the closed form log(n0 + sum(exp(tail))) - tail[k]. The scratch a
    # contiguous row needs is its per-block references only (no 3x copy of 8 GiB).
    n0, k = 2**31, 64
    z = _zero_pages(n0 + k, np.float32)
    tail = np.linspace(1, 9, k, dtype=np.float32)
    z[n0:] = tail
    want = np.log(n0 + np.sum(np.exp(tail.astype(np.float64)))) - np.float64(tail[17])
    got = xent.softmax_cross_entropy(z[None], np.array([n0 + 17]), reduction="sum")
    assert got == pytest.approx(want, rel=2e-6)
