"""The fast path of small calls (issue 4): what the public functions need to call the lean
bindings of cpp/bindings/fast.cpp when every option is at its default (for
``softmax_cross_entropy``, ``softmax_focal_loss`` and ``poly1_cross_entropy``: when
``axis`` and ``check_finite`` are; for
``sigmoid_cross_entropy``: when ``check_finite`` is, ``axis`` being None or an int naming
the last axis; the bindings take the other options themselves).

A public function tests its options against their defaults (``is None``, ``is ZERO``,
``is LAST``, ``is False``: identity checks, no object built) and, when they all hold,
calls ``_core.*_fast``. That binding takes the common case only (exact ``numpy.ndarray``,
aligned, native byte order, float32/float64 logits, int32/int64 labels, no empty axis;
``n_threads`` None or an int from 1 to the hardware threads; weights as float32/float64
C-order arrays, finite and >= 0, that need no rescaling; valid float options) and returns
None for anything else or for an out-of-range label; the caller then runs the
general path, which validates everything and raises the usual errors. Both paths call the
same C++ driver with the same arguments, so the results are the same bits (tested in
tests/test_fast_path.py); only the Python and binding overhead differs (bench/README.md).
"""
from __future__ import annotations

# The defaults of the float options and of ``axis``: a caller who passes another object
# (even an equal one) takes the general path, which gives the same result.
ZERO = 0.0
LAST = -1
