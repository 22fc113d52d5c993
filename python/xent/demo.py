"""A short tour of xent: ``python -m xent.demo``.

Prints xent's configuration, then computes a softmax cross-entropy loss and its gradient
for a realistic batch (4096 x 1000 float32 logits, integer labels, mean reduction) with
xent and with a careful, numerically stable NumPy implementation, checks that they agree
and times both; then does the same for the sigmoid (binary / multi-label) loss on 2M
elements. Needs only NumPy and xent; runs in a few seconds. The timings are those of this
machine at this moment: see ``bench/`` in the source tree for the full comparison with
PyTorch, scikit-learn and JAX.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import xent


def numpy_softmax_cross_entropy(z, y):
    """Mean of ``logsumexp(z) - z[y]`` over rows, and its gradient ``(softmax(z) - onehot(y)) / n``."""
    n = z.shape[0]
    rows = np.arange(n)
    g = z - z.max(axis=1, keepdims=True)  # shifted logits: exp cannot overflow
    picked = g[rows, y]
    np.exp(g, out=g)
    s = g.sum(axis=1, keepdims=True)  # each row holds a 1, so s >= 1 and log(s) is safe
    loss = np.mean(np.log(s[:, 0]) - picked, dtype=np.float64)
    g *= (1.0 / n) / s  # softmax / n
    g[rows, y] -= 1.0 / n
    return float(loss), g


def numpy_sigmoid_cross_entropy(z, t):
    """Mean of ``max(z, 0) - z*t + log1p(exp(-|z|))`` and its gradient ``(sigmoid(z) - t) / n``."""
    n = z.size
    e = np.exp(-np.abs(z))  # in (0, 1]: no overflow
    loss = np.mean(np.maximum(z, 0) - z * t + np.log1p(e), dtype=np.float64)
    g = np.where(z >= 0, 1.0, e).astype(z.dtype)  # sigmoid(z) = g / (1 + e), either sign
    g /= 1 + e
    g -= t
    g *= 1.0 / n
    return float(loss), g


def median_ms(fn, repeats=10):
    """Median wall time of ``fn()`` in ms over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def compare(title, n_terms, ours, reference):
    """Checks that ``ours()`` and ``reference()`` agree, then times both. Returns True if they agree."""
    loss_x, grad_x = ours()
    loss_n, grad_n = reference()
    d_loss = abs(loss_x - loss_n)
    d_grad = float(np.max(np.abs(grad_x - grad_n)))
    # float32 rounding: the gradient entries are at most 1/n_terms in size
    ok = d_loss <= 1e-5 * max(1.0, abs(loss_n)) and d_grad <= 1e-5 / n_terms
    t_x, t_n = median_ms(ours), median_ms(reference)
    print(f"\n{title}")
    print(f"  loss: xent {loss_x:.7f}, numpy {loss_n:.7f}")
    print(f"  max |difference|: loss {d_loss:.2e}, gradient {d_grad:.2e}  ->  {'agree' if ok else 'DISAGREE'}")
    print(f"  {'':<8}{'ms / call':>11}{'speed-up':>10}")
    print(f"  {'numpy':<8}{t_n:>11.2f}{1.0:>9.1f}x")
    print(f"  {'xent':<8}{t_x:>11.2f}{t_n / t_x:>9.1f}x")
    return ok


def main() -> int:
    print("xent configuration")
    xent.show_config()
    rng = np.random.default_rng(2024)

    n, c = 4096, 1000
    logits = (3 * rng.standard_normal((n, c))).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    ok = compare(
        f"softmax cross-entropy: {n} x {c} float32 logits, integer labels, mean, loss + gradient",
        n,
        lambda: xent.softmax_cross_entropy(logits, labels, return_grad=True),
        lambda: numpy_softmax_cross_entropy(logits, labels),
    )

    m = 2_000_000
    z = (4 * rng.standard_normal(m)).astype(np.float32)
    targets = (rng.random(m) < 0.1).astype(np.float32)  # multi-label: ~10% positives
    ok &= compare(
        f"sigmoid cross-entropy: {m:,} float32 logits, 0/1 targets, mean, loss + gradient",
        m,
        lambda: xent.sigmoid_cross_entropy(z, targets, return_grad=True),
        lambda: numpy_sigmoid_cross_entropy(z, targets),
    )

    print("\n(ms: median of 10 calls after a warm-up; speed-up: numpy time / xent time)")
    if not ok:
        print("ERROR: xent and the NumPy reference disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
