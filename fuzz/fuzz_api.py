"""Coverage-guided fuzz target of xent's Python API (atheris).

Arbitrary bytes are decoded into one call: the function, dtype, shape, class axis, memory
layout, logits drawn from extreme values (NaN, +-inf, huge, tiny, subnormal, -0.0) or raw
floats, labels (out of range too), targets, class and sample weights (negative, NaN too; and
pos_weight for the sigmoid loss), ignore_index, z_loss, label_smoothing, reduction,
return_grad, out=, grad_out= (new, the logits, or over an input's memory) and n_threads.
Invariants, for every call:
- it returns, or raises ValueError / TypeError (nothing else: no crash, no RuntimeError);
- no input array is modified;
- results have the documented shapes and dtypes;
- no NaN anywhere in a result when no input holds NaN or +inf (-inf logits are masks),
  targets lie in [0, 1] and weights are valid (finite and >= 0, of any size: their products
  may overflow).

`check(data)` is plain Python (no atheris), so tests/test_fuzz_regressions.py replays the
inputs kept in fuzz/regressions/ with pytest.

Run:  python fuzz/fuzz_api.py -max_total_time=60 [-rss_limit_mb=4096] [CORPUS_DIR ...]
(libFuzzer flags; a failing input is written to ./crash-*: keep real ones in fuzz/regressions/.)
Coverage: atheris instruments xent's Python code (the validators); the C++ core is run,
not instrumented (that would need a clang -fsanitize=fuzzer-no-link build of _core).
"""
from __future__ import annotations

import math
import struct
import sys

import numpy as np

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 10.0, -10.0, 88.0, -88.0, 89.0, 700.0, -745.0, 1e-30, -1e-30,
           1e-45, 5e-324, 1e30, -1e30, 3.4e38, -3.4e38, 1e300, -1e300, 1.7e308, -1.7e308,
           math.inf, -math.inf, math.nan]
FUNCS = ["logsumexp", "softmax", "log_softmax", "xent_labels", "xent_targets", "sigmoid"]


class Bytes:
    """Consumes the fuzz input from the front; zeros once it is used up."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def pick(self, seq):
        return seq[self.u8() % len(seq)]

    def int_in(self, lo: int, hi: int) -> int:
        return lo + (self.u8() | self.u8() << 8) % (hi - lo + 1)

    def flag(self) -> bool:
        return self.u8() & 1 == 1

    def value(self) -> float:
        b = self.u8()
        if b < 128:
            return SPECIAL[b % len(SPECIAL)]
        if b < 192:  # a raw double: any bit pattern
            raw = bytes(self.u8() for _ in range(8))
            return struct.unpack("<d", raw)[0]
        return (b - 224) / 8.0  # small ordinary values

    def values(self, n: int) -> list:
        return [self.value() for _ in range(n)]


def _layout(b: Bytes, a: np.ndarray) -> np.ndarray:
    """The same values in another memory layout (the result must not change)."""
    kind = b.u8() % 6
    if kind == 1 and a.ndim:
        return np.asfortranarray(a)
    if kind == 2 and a.ndim:
        big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
        v = big[tuple(slice(None, None, 2) for _ in a.shape)]
        v[...] = a
        return v
    if kind == 3:
        return a.astype(a.dtype.newbyteorder("S"))
    if kind == 4 and a.ndim:
        r = a[(slice(None, None, -1),) * a.ndim].copy()
        return r[(slice(None, None, -1),) * a.ndim]
    return a


def _clean(*arrays) -> bool:
    """No NaN or +inf anywhere (-inf allowed: masks)."""
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        if a.dtype.kind in "fc" and (np.isnan(a).any() or np.isposinf(a).any()):
            return False
    return True


def _no_nan(result) -> None:
    parts = result if isinstance(result, tuple) else (result,)
    for p in parts:
        if np.isnan(np.asarray(p, dtype=np.float64)).any():
            raise AssertionError(f"NaN in a result for clean input: {p!r}")


def _build(b: Bytes):
    fname = b.pick(FUNCS)
    dtype = b.pick([np.float32, np.float64, np.float32, np.float64, np.float16, np.int64, np.bool_, np.complex64])
    ndim = b.int_in(1, 3)
    shape = tuple(b.int_in(0, 6) for _ in range(ndim))
    n = math.prod(shape)
    with np.errstate(all="ignore"):
        x = np.array(b.values(n), dtype=np.float64).astype(dtype).reshape(shape)
    axis = b.int_in(-4, 3) if b.flag() else -1
    kw: dict = {}
    if b.flag():
        kw["n_threads"] = b.int_in(1, 3)
    return fname, x, axis, kw


def _sigmoid_weights(b: Bytes, x, sax, inputs, kw) -> None:
    """Class weights, pos_weight (one per class of the class axis: ``sax``, else the last)
    and sample weights (one per sample) of a sigmoid call, each only if a flag says so."""
    cax = sax if sax is not None else -1
    ok = x.ndim and -x.ndim <= cax < x.ndim
    C = x.shape[cax] if ok else 1
    for name in ("weight", "pos_weight"):
        if b.flag():
            kw[name] = inputs[name] = np.array([abs(b.value()) if b.u8() % 8 else b.value() for _ in range(C)])
    if b.flag():
        if sax is None:
            shape = x.shape[:-1] if x.ndim >= 2 else x.shape
        else:
            shape = tuple(s for i, s in enumerate(x.shape) if not ok or i != cax % x.ndim)
        sw = np.array([abs(b.value()) for _ in range(math.prod(shape))]).reshape(shape)
        kw["sample_weight"] = inputs["sw"] = _layout(b, sw)


def _grad_buffer(b: Bytes, inputs: dict, kw: dict, x: np.ndarray, rg: bool) -> None:
    """Sometimes a grad_out= buffer (decoded last, so older fuzz inputs decode as before): a
    new array, the logits themselves, or one sharing memory with an input (the input is
    moved into one byte buffer with it, a few bytes apart or at the same address), which
    the call must refuse unless the overlap is allowed (the logits, exactly)."""
    if not rg or not b.flag():
        return
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    kind = b.u8() % 4
    if kind == 0:
        kw["grad_out"] = np.full(x.shape, 7, dt)
        return
    if kind == 1:
        kw["grad_out"] = inputs["x"]
        return
    key = b.pick([k for k in ("x", "y", "t", "w", "sw") if k in inputs])
    a = inputs[key]
    nb = x.size * dt.itemsize
    shift = b.pick([0, a.itemsize, 8, 64])
    base = np.zeros(max(a.nbytes, shift + nb) + 64, np.uint8)
    moved = base[: a.nbytes].view(a.dtype).reshape(a.shape)
    moved[...] = a
    inputs[key] = moved
    for name, k in (("weight", "w"), ("sample_weight", "sw")):
        if k == key:
            kw[name] = moved
    kw["grad_out"] = base[shift : shift + nb].view(dt).reshape(x.shape)


def _plan(b: Bytes, fname, x, axis, kw):
    """Decodes the rest of the call: returns (call, inputs, sum_axis); nothing is run yet."""
    import xent

    inputs = {"x": _layout(b, x)}
    ax = axis if x.ndim and -x.ndim <= axis < x.ndim else None
    rows = tuple(s for i, s in enumerate(x.shape) if ax is None or i != ax % x.ndim)
    C = x.shape[ax] if ax is not None else 1
    if fname in ("logsumexp", "softmax", "log_softmax"):
        f = getattr(xent, fname)
        if fname != "logsumexp" and b.flag():
            dt = np.float64 if x.dtype == np.float64 or x.dtype.kind in "iub" else np.float32
            kw["out"] = np.empty(x.shape if b.u8() % 4 else (1, *x.shape), dt)  # sometimes a wrong shape
        return (lambda: f(inputs["x"], axis=axis, **kw)), inputs, None
    reduction = b.pick(["none", "sum", "mean", "bogus"])
    rg = b.flag()
    with np.errstate(all="ignore"):
        t = np.clip(np.abs(np.array(b.values(x.size), dtype=np.float64)), 0, 1).reshape(x.shape)
    if fname == "sigmoid":
        inputs["t"] = _layout(b, t.astype(x.dtype) if x.dtype.kind == "f" else t)
        sax = axis if b.flag() else None
        _sigmoid_weights(b, x, sax, inputs, kw)
        _grad_buffer(b, inputs, kw, x, rg)
        return (lambda: xent.sigmoid_cross_entropy(inputs["x"], inputs["t"], axis=sax, reduction=reduction,
                                                   return_grad=rg, **kw)), inputs, sax
    if fname == "xent_labels":
        ldt = b.pick([np.int64, np.int32, np.uint8, np.int16])
        lab = np.array([b.int_in(-3, C + 3) for _ in range(math.prod(rows))], dtype=np.int64)
        inputs["y"] = _layout(b, lab.astype(ldt).reshape(rows))
        if b.flag():
            kw["ignore_index"] = b.int_in(-3, C + 3) if b.flag() else -100
    else:
        inputs["y"] = _layout(b, t)
    if b.flag():
        kw["weight"] = inputs["w"] = _layout(b, np.array([abs(b.value()) if b.u8() % 8 else b.value()
                                                         for _ in range(C)]))
    if b.flag():
        sw = np.array([abs(b.value()) for _ in range(math.prod(rows))]).reshape(rows)
        kw["sample_weight"] = inputs["sw"] = _layout(b, sw)
    if b.flag():
        kw["z_loss"] = b.pick([0.0, 1e-4, 0.1, 1.0, 1e30, -1.0, math.nan])
    if b.flag():
        kw["label_smoothing"] = b.pick([0.0, 0.1, 0.5, 1.0, 1.5])
    _grad_buffer(b, inputs, kw, x, rg)
    return (lambda: xent.softmax_cross_entropy(inputs["x"], inputs["y"], axis=axis, reduction=reduction,
                                               return_grad=rg, **kw)), inputs, None


def _check_shapes(fname, x, axis, sum_axis, kw, result):
    if fname == "sigmoid":
        if sum_axis is None:
            axis = None
        else:
            axis = sum_axis
    rows = x.shape if axis is None else x.shape[: axis % x.ndim] + x.shape[axis % x.ndim + 1:]
    if fname == "logsumexp":
        assert np.shape(result) == rows, (np.shape(result), rows)
        return
    if fname in ("softmax", "log_softmax"):
        assert result.shape == x.shape and ("out" not in kw or result is kw["out"])
        return
    loss, grad = result if isinstance(result, tuple) else (result, None)
    if grad is not None:
        assert grad.shape == x.shape and grad.dtype.kind == "f", grad
        assert "grad_out" not in kw or grad is kw["grad_out"]
    if not isinstance(loss, float):
        assert loss.shape == rows, (loss.shape, rows)


def _same_as_fresh(call, inputs: dict, copies: dict, kw: dict, result) -> None:
    """A call that accepted a grad_out= sharing memory with an input must give the results
    of the same call on the original values with a new buffer."""
    inputs.update({k: c.copy() for k, c in copies.items()})
    for name, k in (("weight", "w"), ("sample_weight", "sw")):
        if k in inputs:
            kw[name] = inputs[k]
    kw["grad_out"] = np.empty_like(kw["grad_out"])
    fresh = call()
    got = result if isinstance(result, tuple) else (result,)
    want = fresh if isinstance(fresh, tuple) else (fresh,)
    for a, b in zip(got, want):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-30, equal_nan=True), (a, b)


def check(data: bytes) -> None:
    """One fuzz input: decode, call, check the invariants (AssertionError if broken)."""
    b = Bytes(data)
    fname, x, axis, kw = _build(b)
    call, inputs, sum_axis = _plan(b, fname, x, axis, kw)
    copies = {k: a.copy() for k, a in inputs.items()}
    g = kw.get("grad_out")
    shared = {k for k, a in inputs.items() if g is not None and np.may_share_memory(a, g)}
    try:
        result = call()
    except (ValueError, TypeError):
        result = None
    for k, a in inputs.items():
        if result is not None and k in shared:
            continue  # a gradient written where the caller asked, over an input's memory
        same = a.dtype == copies[k].dtype and np.array_equal(a, copies[k], equal_nan=a.dtype.kind in "fc")
        assert same, f"input {k} was modified"
    if result is None:
        return
    _check_shapes(fname, x, axis, sum_axis, kw, result)
    # valid weights of any size: products that overflow (class weight 1e264 times sample
    # weight 1e300) give +-inf or finite results, never NaN (docs/losses.md, "Huge weights")
    weights_ok = all(np.all(np.isfinite(kw[k])) and np.all(kw[k] >= 0) for k in ("weight", "pos_weight",
                     "sample_weight") if k in kw)
    if x.dtype.kind == "f" and _clean(*copies.values()) and weights_ok:
        _no_nan(result)
    if shared:  # last: it replaces the inputs and the buffer
        _same_as_fresh(call, inputs, copies, kw, result)


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        import xent  # noqa: F401

    def one(data: bytes) -> None:
        check(data)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
