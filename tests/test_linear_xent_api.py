"""xent.linear_cross_entropy: bad input, inputs left unmodified, the documented memory bound
(tracemalloc: NumPy reports its allocations to it) and agreement with PyTorch."""
import tracemalloc

import numpy as np
import pytest

import xent
from xent import _linear

N, H, V = 6, 4, 9


@pytest.fixture
def data(rng):
    return (rng.standard_normal((N, H)), rng.standard_normal((V, H)), rng.integers(0, V, N), rng.standard_normal(V))


def test_bad_input_names_the_argument(data):
    h, w, y, b = data
    f = xent.linear_cross_entropy
    cases = [
        (ValueError, "features", lambda: f(h, w[:, :3], y)),
        (ValueError, "bias", lambda: f(h, w, y, bias=b[:5])),
        (ValueError, "labels", lambda: f(h, w, y[:4])),
        (ValueError, "out of range", lambda: f(h, w, np.where(y == y[0], V, y))),
        (ValueError, "out of range", lambda: f(h, w, np.full(N, -1), ignore_index=-100)),
        (TypeError, "labels", lambda: f(h, w, y.astype(float))),
        (TypeError, "share one dtype", lambda: f(h.astype(np.float32), w, y)),
        (TypeError, "share one dtype", lambda: f(h, w, y, bias=b.astype(np.float32))),
        (TypeError, "hidden", lambda: f(h.astype(complex), w, y)),
        (ValueError, "hidden must be 2-d", lambda: f(h[0], w, y)),
        (ValueError, "weight must be 2-d", lambda: f(h, w[None], y)),
        (ValueError, "reduction", lambda: f(h, w, y, reduction="avg")),
        (ValueError, "chunk_size", lambda: f(h, w, y, chunk_size=0)),
        (ValueError, "chunk_size", lambda: f(h, w, y, chunk_size=(1, 2, 3))),
        (TypeError, "chunk_size", lambda: f(h, w, y, chunk_size=2.5)),
        (ValueError, "grad_scale needs return_grad", lambda: f(h, w, y, grad_scale=2.0)),
        (ValueError, "grad_scale", lambda: f(h, w, y, return_grad=True, grad_scale=np.ones(N))),
        (ValueError, "grad_scale", lambda: f(h, w, y, reduction="none", return_grad=True, grad_scale=np.ones(N + 1))),
        (ValueError, "label_smoothing", lambda: f(h, w, y, label_smoothing=1.5)),
        (ValueError, "softcap", lambda: f(h, w, y, softcap=-1.0)),
        (ValueError, "n_threads", lambda: f(h, w, y, n_threads=0)),
        (ValueError, "vocabulary is empty", lambda: f(h, w[:0], np.full(N, -1), ignore_index=-1)),
    ]
    for exc, words, call in cases:
        with pytest.raises(exc, match=words):
            call()


def test_inputs_never_modified(data):
    h, w, y, b = data
    b = b.copy()
    b[2] = -np.inf
    y[y == 2] = 3
    copies = [a.copy() for a in (h, w, y, b)]
    for chunk in (None, (2, 4)):
        xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, chunk_size=chunk, softcap=2.0,
                                  label_smoothing=0.1, z_loss=0.1, reduction="none", grad_scale=np.ones(N))
    for a, c in zip((h, w, y, b), copies):
        np.testing.assert_array_equal(a, c)


def test_non_contiguous_and_int32_labels(data):
    h, w, y, b = data
    want = xent.linear_cross_entropy(h, w, y, bias=b)
    hf, wf = np.asfortranarray(h), np.asfortranarray(w)
    assert xent.linear_cross_entropy(hf, wf, y.astype(np.int32), bias=b) == pytest.approx(want, rel=1e-12)


def _peak_extra(call):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return peak - before


@pytest.mark.parametrize("chunk", [None, 64, (64, 1000)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_peak_memory_within_documented_bound(rng, chunk, reduction, monkeypatch):
    n, hd, v = 512, 32, 4096
    # default chunking under a 2**16 budget: 16 rows per whole-vocabulary tile is too few,
    # so vocabulary blocks of 256 x 256 (the recompute path)
    monkeypatch.setattr(_linear, "TILE_ELEMENTS", 2**16)
    h = rng.standard_normal((n, hd))
    w = rng.standard_normal((v, hd))
    b = rng.standard_normal(v)
    y = rng.integers(0, v, n)
    r, blk = _linear._chunks(chunk, n, v)
    # first-use imports (SciPy), on a tiny problem that takes both paths
    xent.linear_cross_entropy(h[:4], w[:5], y[:4] % 5, return_grad=True, chunk_size=(2, 3))
    # the docstring's bound in elements, then bytes, plus O(N + R V / B) float64 bookkeeping
    elems = r * blk + n * hd + v * hd + 2 * v + r * hd + (n if reduction == "none" else 0)
    bound = 8 * elems + 8 * (16 * n + 8 * r * (v // blk + 1)) + 64 * 1024
    extra = _peak_extra(lambda: xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, chunk_size=chunk,
                                                          reduction=reduction, label_smoothing=0.1))
    assert extra <= bound, (extra, bound)
    assert bound < 8 * n * v  # the bound is below the materialised logits alone
    with_cap = _peak_extra(lambda: xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, chunk_size=chunk,
                                                             reduction=reduction, softcap=3.0))
    assert with_cap <= bound + 8 * r * blk * (blk < v)


def test_agrees_with_pytorch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, hd, v = 17, 8, 29
    h, w, b = rng.standard_normal((n, hd)), rng.standard_normal((v, hd)), rng.standard_normal(v)
    y = rng.integers(0, v, n)
    y[::4] = -100
    for chunk in (None, (5, 7)):
        for eps in (0.0, 0.25):
            for red in ("mean", "sum", "none"):
                th, tw, tb = (torch.tensor(a, requires_grad=True) for a in (h, w, b))
                tl = F.cross_entropy(F.linear(th, tw, tb), torch.tensor(y), ignore_index=-100, label_smoothing=eps,
                                     reduction=red)
                tl.sum().backward()
                loss, g = xent.linear_cross_entropy(h, w, y, bias=b, ignore_index=-100, label_smoothing=eps,
                                                    reduction=red, return_grad=True, chunk_size=chunk)
                np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=1e-12, atol=1e-12)
                for got, t in zip(g, (th, tw, tb)):
                    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-10, atol=1e-12)
