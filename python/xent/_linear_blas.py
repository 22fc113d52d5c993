"""Matrix products for the fused linear cross-entropy: ``C += A @ B`` without a temporary of
``C``'s size, and a BLAS thread limit.

SciPy's BLAS wrappers (``gemm`` with ``beta=1``) accumulate in place when SciPy is
importable; otherwise NumPy's ``matmul`` writes slabs of at most ``SLAB`` rows of ``C`` into
a scratch buffer that is then added (``SLAB x n`` extra elements). Neither is imported by
``import xent``: SciPy and threadpoolctl are optional and loaded on first use.
"""
from __future__ import annotations

import contextlib

import numpy as np

SLAB = 2048  # rows of C per NumPy fallback product (its scratch is SLAB x n)
_gemm_cache: dict = {}


def _scipy_gemm(dtype):
    if dtype.char not in _gemm_cache:
        try:
            from scipy.linalg import blas
        except ImportError:  # pragma: no cover - SciPy is optional
            _gemm_cache[dtype.char] = None
        else:
            _gemm_cache[dtype.char] = blas.get_blas_funcs("gemm", dtype=dtype)
    return _gemm_cache[dtype.char]


def _fortran(m: np.ndarray):
    """(array BLAS reads without a copy, transpose flag) for the matrix value ``m``."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


def matmul_acc(c: np.ndarray, a: np.ndarray, b: np.ndarray, *, first: bool, use_scipy: bool = True) -> None:
    """``c = a @ b`` if ``first`` else ``c += a @ b``; ``c`` is C-contiguous and never copied."""
    if first or c.size == 0:
        np.matmul(a, b, out=c)
        return
    if a.shape[1] == 0:
        return
    gemm = _scipy_gemm(c.dtype) if use_scipy else None
    if gemm is not None:
        # C-order c is the Fortran-order c.T, and c.T += b.T @ a.T
        fa, ta = _fortran(b.T)
        fb, tb = _fortran(a.T)
        res = gemm(1.0, fa, fb, beta=1.0, c=c.T, trans_a=ta, trans_b=tb, overwrite_c=1)
        if np.shares_memory(res, c):
            return
        c[...] = res.T  # pragma: no cover - a wrapper that copied c anyway
        return
    scratch = np.empty((min(SLAB, c.shape[0]), c.shape[1]), dtype=c.dtype)
    for s in range(0, c.shape[0], SLAB):
        part = scratch[: min(SLAB, c.shape[0] - s)]
        np.matmul(a[s : s + SLAB], b, out=part)
        c[s : s + SLAB] += part


def blas_threads(n_threads):
    """A context limiting BLAS to ``n_threads`` when threadpoolctl is importable (else, and
    for ``None``, BLAS keeps its own setting, e.g. ``OPENBLAS_NUM_THREADS``)."""
    if n_threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(n_threads), user_api="blas")
