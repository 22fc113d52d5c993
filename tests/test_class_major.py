"""The sigmoid Hessian walks its operands in memory order (api.cpp, memory_order): a
Fortran-order array, a transposed view or reversed strides give the bits of the same call on
C-order arrays, whatever the order of each operand."""
import numpy as np
import pytest

import xent

DTYPES = [np.float32, np.float64]


def _same(a, b):
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _same(u, v)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


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
