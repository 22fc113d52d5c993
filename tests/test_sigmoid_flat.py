"""The sigmoid losses cut the rows laid end to end in their logical order into work units
(with a loss per row, ``axis`` given and "none", whole rows per unit, for rows shorter than a
unit), so that short rows share a kernel call and the results, sums included, are the same
bits for every memory layout (units-inl.hpp, sigmoid_units_flat). Against a float64 reference across unit and task
boundaries, with per-row sample weights (zeros among them) and per-class vectors that
continue from row to row."""
import numpy as np
import pytest

import sigmoid_ref as sref
import xent
from conftest import GRAD_TOL, LOSS_TOL

SEG = 1 << 13  # elements per work unit (api.cpp, kSigmoidSeg); a task is four units


def _layouts(a):
    """The same values in other memory layouts (C, Fortran, every other element, reversed; a
    Fortran-order array's rows are moved a column at a time)."""
    big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    strided = big[tuple(slice(None, None, 2) for _ in a.shape)]
    strided[...] = a
    flip = (slice(None, None, -1),) * a.ndim
    rev = np.ascontiguousarray(a[flip])[flip]
    frev = np.asfortranarray(a[flip])[flip]
    return {"C": np.ascontiguousarray(a), "F": np.asfortranarray(a), "strided": strided, "reversed": rev,
            "F reversed": frev}


def _weighted(z, t, w, q, sw, axis, eps, reduction):
    """Element losses and gradients times class weight w and sample weight sw, reduced: the
    float64 reference (the sample weight of a row spread over its class axis), and the
    reduction's denominator."""
    z = np.asarray(z, np.float64)
    cax = z.ndim - 1 if axis is None else axis % z.ndim
    shape = [1] * z.ndim
    shape[cax] = -1
    l, g = sref.bce(z, t, None if q is None else np.asarray(q, np.float64).reshape(shape), eps)
    wt = np.ones(z.shape, np.longdouble)
    if w is not None:
        wt = wt * np.asarray(w, np.float64).reshape(shape)
    if sw is not None:
        wt = wt * np.expand_dims(np.asarray(sw, np.float64), cax)
    lw, gw = np.where(wt == 0, 0, l * wt), np.where(wt == 0, 0, g * wt)
    per = lw if axis is None else lw.sum(axis=cax)
    if reduction == "none":
        return per.astype(np.float64), gw.astype(np.float64), 1.0
    if reduction == "sum":
        return float(per.sum()), gw.astype(np.float64), 1.0
    per_sample = z.shape[cax] if axis is None else 1
    d = per.size if sw is None else float(np.sum(sw, dtype=np.float64)) * per_sample
    return float(per.sum() / d), (gw / d).astype(np.float64), d


# (axis given with "none": a loss per row, summed from its elements for rows shorter than a
# unit, whole rows per unit; longer rows are cut into segments, a kernel call each)
CASES = [(s, None, r) for s in ((3000, 37), (40, 3, 301), (2, 20000)) for r in ("none", "sum", "mean")] + [
    (s, a, r) for s, a in (((37, 3000), 0), ((9000, 3), -1), ((5, 1800, 3), 1), ((3, 9000), -1))
    for r in ("none", "sum", "mean")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,reduction", CASES)
def test_short_rows_across_units_against_reference(isa, rng, dtype, shape, axis, reduction):
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    z.reshape(-1)[:2] = [60.0, -60.0]  # huge logits, where the loss is z (1 - t) or -z t
    t = rng.random(shape).astype(dtype)
    cax = len(shape) - 1 if axis is None else axis % len(shape)
    C = shape[cax]
    sw = rng.random(shape[:cax] + shape[cax + 1:]).astype(dtype)
    sw.reshape(-1)[::7] = 0  # rows of weight 0 inside units
    w = (rng.random(C) + 0.2).astype(dtype)
    q = (rng.random(C) * 3).astype(dtype)
    kw = dict(weight=w, pos_weight=q, sample_weight=sw, label_smoothing=0.05)
    loss, grad = xent.sigmoid_cross_entropy(z, t, axis=axis, reduction=reduction, return_grad=True, **kw)
    rl, rg, d = _weighted(z, t, w, q, sw, axis, 0.05, reduction)
    tol = LOSS_TOL[dtype] if reduction == "none" else dict(rtol=2e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(loss, rl, **tol)
    g = GRAD_TOL[dtype]
    np.testing.assert_allclose(grad, rg, rtol=g["rtol"], atol=g["atol"] / d)
    assert z.size > 2 * SEG  # several units, rows cut at unit boundaries


CALLS = {
    "plain": lambda z, t, sw, **k: xent.sigmoid_cross_entropy(z, t, **k),
    "options": lambda z, t, sw, **k: xent.sigmoid_cross_entropy(
        z, t, weight=np.linspace(0.5, 2, z.shape[-1]), pos_weight=2.0, sample_weight=sw, label_smoothing=0.1, **k),
    "softcap": lambda z, t, sw, **k: xent.sigmoid_cross_entropy(z, t, softcap=5.0, **k),
    "focal": lambda z, t, sw, **k: xent.sigmoid_focal_loss(z, t, gamma=2.0, alpha=0.25, sample_weight=sw, **k),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("shape", [(700, 37), (6, 50, 33), (3, 9000)])
def test_sums_and_gradients_same_bits_for_every_layout(isa, rng, dtype, call, shape):
    # (the sums used to follow memory order: a Fortran-order array gave other bits)
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.random(shape).astype(dtype)
    sw = rng.random(shape[:-1])
    for reduction, axis in (("sum", None), ("mean", None), ("mean", -1), ("none", None), ("none", -1)):
        want = CALLS[call](z, t, sw, axis=axis, reduction=reduction, return_grad=True)
        for name, zz in _layouts(z).items():
            for tname, tt in _layouts(t).items():
                if name != tname and tname != "C":
                    continue
                got = CALLS[call](zz, tt, sw, axis=axis, reduction=reduction, return_grad=True)
                msg = f"{reduction} axis={axis} z {name} t {tname}"
                np.testing.assert_array_equal(got[0], want[0], err_msg=msg)
                np.testing.assert_array_equal(got[1], want[1], err_msg=msg)


@pytest.mark.parametrize("axis", [None, -1])
def test_grad_out_layouts_threads_and_in_place(isa, rng, axis):
    z = (rng.standard_normal((5000, 21)) * 3).astype(np.float32)
    t = rng.random(z.shape).astype(np.float32)
    sw = rng.random(5000)
    kw = dict(axis=axis, sample_weight=sw, weight=np.linspace(0.1, 1, 21), return_grad=True)
    want = xent.sigmoid_cross_entropy(z, t, n_threads=1, **kw)
    rows = xent.sigmoid_cross_entropy(z, t, n_threads=1, reduction="none", **kw)
    for n in (2, 3):
        got = xent.sigmoid_cross_entropy(z, t, n_threads=n, **kw)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        got = xent.sigmoid_cross_entropy(z, t, n_threads=n, reduction="none", **kw)
        np.testing.assert_array_equal(got[0], rows[0])
        np.testing.assert_array_equal(got[1], rows[1])
    for name, g in _layouts(np.zeros_like(z)).items():
        got = xent.sigmoid_cross_entropy(z, t, grad_out=g, **kw)
        assert got[0] == want[0], name
        assert got[1] is g
        np.testing.assert_array_equal(g, want[1], err_msg=name)
    for name, zz in _layouts(z).items():  # the gradient written over the logits
        got = xent.sigmoid_cross_entropy(zz, t, grad_out=zz, **kw)
        assert got[0] == want[0], name
        np.testing.assert_array_equal(zz, want[1], err_msg=name)


ROW_OPTIONS = {  # (the kernel's option sets with the weights one per row, and its general loop)
    "sample_weight": {},
    "with the others": dict(pos_weight=1.5, label_smoothing=0.1, weight="classes"),
    "softcap": dict(softcap=4.0),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", list(ROW_OPTIONS))
@pytest.mark.parametrize("shape", [(3000, 32), (1000, 96), (300, 4, 16), (5, 8), (2, 12000), (1000, 20), (700, 37),
                                   (3000, 9), (4000, 3)])
def test_row_weights_broadcast_in_the_kernel(isa, rng, dtype, options, shape):
    # Rows of a vector or more (8 float32, 4 float64 lanes; 1 on the scalar ISA, rows of 2 or
    # more) take their weights one per row in the kernel (SigmoidRunOpts::rws), a vector's
    # lanes from one row or two (C = 20, 37, 9): rows of whole vectors, units starting mid-row
    # (96 does not divide a unit), rows over several dims, rows longer than a unit; rows of 3
    # spread the weights over the elements (but on the scalar ISA). The same bits as the
    # flattened input with its weights written out per element (read as element weights),
    # and the float64 reference.
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    z.reshape(-1)[:2] = [60.0, -60.0]
    t = rng.random(shape).astype(dtype)
    sw = (rng.random(shape[:-1]) + 0.1).astype(dtype)
    kw = dict(ROW_OPTIONS[options])
    flat_kw = dict(kw)
    if kw.get("weight") == "classes":
        kw["weight"] = np.linspace(0.5, 2, shape[-1]).astype(dtype)
        flat_kw["weight"] = np.tile(kw["weight"], z.size // shape[-1])
    for zeros in (False, True):
        if zeros:
            sw.reshape(-1)[::5] = 0  # rows of weight 0: the kernel's zero test
        every = np.broadcast_to(sw[..., None], shape).reshape(-1)
        for reduction in ("none", "sum", "mean"):
            loss, grad = xent.sigmoid_cross_entropy(z, t, sample_weight=sw, reduction=reduction, return_grad=True,
                                                    **kw)
            msg = f"{reduction} zeros={zeros}"
            if reduction != "mean":  # (the mean's denominator is summed from other weights)
                wl, wg = xent.sigmoid_cross_entropy(z.reshape(-1), t.reshape(-1), sample_weight=every,
                                                    reduction=reduction, return_grad=True, **flat_kw)
                np.testing.assert_array_equal(loss, np.reshape(wl, np.shape(loss)), err_msg=msg)
                np.testing.assert_array_equal(grad, wg.reshape(shape), err_msg=msg)
            if "softcap" in kw:
                continue  # (the reference has no softcap; the bits above are the check)
            rl, rg, d = _weighted(z, t, kw.get("weight"), kw.get("pos_weight"), sw, None,
                                  kw.get("label_smoothing", 0.0), reduction)
            tol = LOSS_TOL[dtype] if reduction == "none" else dict(rtol=2e-6 if dtype == np.float32 else 1e-13)
            np.testing.assert_allclose(loss, rl, err_msg=msg, **tol)
            g = GRAD_TOL[dtype]
            np.testing.assert_allclose(grad, rg, rtol=g["rtol"], atol=g["atol"] / d, err_msg=msg)
    for n in (2, 3):  # across tasks
        got = xent.sigmoid_cross_entropy(z, t, sample_weight=sw, return_grad=True, n_threads=n, **kw)
        want = xent.sigmoid_cross_entropy(z, t, sample_weight=sw, return_grad=True, n_threads=1, **kw)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])


def test_elementwise_loss_out_in_every_layout(isa, rng):
    z = (rng.standard_normal((900, 19)) * 3).astype(np.float64)
    t = rng.random(z.shape)
    sw = rng.random(900)
    want = xent.sigmoid_cross_entropy(z, t, sample_weight=sw, reduction="none", return_grad=True)
    for name, out in _layouts(np.zeros_like(z)).items():
        for gname, g in _layouts(np.zeros_like(z)).items():
            loss, grad = xent.sigmoid_cross_entropy(z, t, sample_weight=sw, reduction="none", return_grad=True,
                                                    out=out, grad_out=g)
            assert loss is out and grad is g
            np.testing.assert_array_equal(out, want[0], err_msg=f"out {name} grad_out {gname}")
            np.testing.assert_array_equal(g, want[1], err_msg=f"out {name} grad_out {gname}")


def test_zero_size_and_single_element(isa):
    for shape in ((0, 5), (5, 0), (0,), (), (1, 1)):
        z = np.ones(shape, np.float32)
        t = np.full(shape, 0.25, np.float32)
        loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="sum", return_grad=True)
        rl, rg = sref.bce(np.asarray(z, np.float64), t)
        assert loss == pytest.approx(float(np.sum(rl)), rel=1e-6)
        np.testing.assert_allclose(grad, rg.astype(np.float64), rtol=1e-6)
        assert grad.shape == shape
