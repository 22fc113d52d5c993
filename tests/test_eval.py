"""xent.evaluate / xent.MetricsAccumulator: every metric against an independent in-memory
float64 computation, for chunk sizes that do not divide the row count, float32 and float64,
logits and probabilities, ties, masks, merges, and bad input."""
import numpy as np
import pytest

import xent
from xent._eval_metrics import PROB_EPS

CHUNKS = [1, 7, 333, None, 10_000]


def reference(z, y, *, from_logits=True, k=5, n_bins=15):
    """In-memory metrics from whole-array xent calls and NumPy (float64)."""
    n, c = z.shape
    k = min(k, c)
    if from_logits:
        mean = xent.softmax_cross_entropy(z, y)
        rows = xent.softmax_cross_entropy(z, y, reduction="none").astype(np.float64)
        conf = np.exp(z.max(axis=1).astype(np.float64) - xent.logsumexp(z).astype(np.float64))
    else:
        p = z.astype(np.float64) / z.sum(axis=1, dtype=np.float64, keepdims=True)
        rows = -np.log(np.clip(p[np.arange(n), y], PROB_EPS, 1 - PROB_EPS))
        mean = rows.mean()
        conf = p.max(axis=1)
    correct = z.argmax(axis=1) == y
    topk = (np.argsort(-z, axis=1, kind="stable")[:, :k] == y[:, None]).any(axis=1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):  # Guo et al.: bins (lo, hi], 0 in the first
        inb = ((conf > lo) | (lo == 0)) & (conf <= hi)
        if inb.any():
            ece += inb.mean() * abs(correct[inb].mean() - conf[inb].mean())
    support = np.bincount(y, minlength=c)
    with np.errstate(invalid="ignore"):
        per_class = np.bincount(y, weights=rows, minlength=c) / support
    return dict(cross_entropy=mean, accuracy=correct.mean(), top_k_accuracy=topk.mean(), ece=ece,
                support=support, per_class=per_class)


def check(res, ref):
    assert res["cross_entropy"] == pytest.approx(ref["cross_entropy"], rel=1e-12, abs=1e-14)
    assert res["perplexity"] == pytest.approx(np.exp(ref["cross_entropy"]), rel=1e-12)
    assert res["accuracy"] == ref["accuracy"]  # counts: exact
    assert res["top_k_accuracy"] == ref["top_k_accuracy"]
    assert res["ece"] == pytest.approx(ref["ece"], rel=1e-10, abs=1e-14)
    np.testing.assert_array_equal(res["per_class"]["support"], ref["support"])
    np.testing.assert_allclose(res["per_class"]["loss"], ref["per_class"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_rows", CHUNKS)
def test_logits_match_in_memory(rng, dtype, chunk_rows):
    n, c = 1001, 37
    y = rng.integers(0, c, n)
    z = (2 * rng.standard_normal((n, c))).astype(dtype)
    z[np.arange(n), y] += rng.uniform(0, 4, n).astype(dtype)  # a model with some skill
    res = xent.evaluate(z, y, chunk_rows=chunk_rows, top_k=3)
    check(res, reference(z, y, k=3))
    assert res["n_rows"] == n and res["n_classes"] == c and res["top_k"] == 3
    assert res["calibration"]["count"].sum() == n


@pytest.mark.parametrize("chunk_rows", [5, 64, None])
def test_probabilities_match_in_memory(rng, chunk_rows):
    n, c = 500, 12
    y = rng.integers(0, c, n)
    p = rng.random((n, c)) ** 4  # unnormalised: evaluate renormalises per row
    p[:20, :] = 0.0
    p[:20, 3] = 2.5  # rows certain of class 3: the clip at 1 - 1e-7 and 1e-7 applies
    res = xent.evaluate(p, y, from_logits=False, chunk_rows=chunk_rows)
    check(res, reference(p, y, from_logits=False))
    # the certain rows cost exactly -log(1e-7) when wrong and -log(1 - 1e-7) when right
    sure = xent.evaluate(p[:20], y[:20], from_logits=False)
    want = np.where(y[:20] == 3, -np.log1p(-PROB_EPS), -np.log(PROB_EPS)).mean()
    assert 0 < (y[:20] == 3).sum() < 20 and sure["cross_entropy"] == pytest.approx(want, rel=1e-14)


def test_ties_and_top1_equals_accuracy(rng):
    z = rng.integers(-2, 3, (400, 6)).astype(np.float32)  # many ties
    y = rng.integers(0, 6, 400)
    for k in (1, 2, 5):
        res = xent.evaluate(z, y, top_k=k, chunk_rows=33)
        check(res, reference(z, y, k=k))
    assert xent.evaluate(z, y, top_k=1)["top_k_accuracy"] == xent.evaluate(z, y)["accuracy"]


def test_top_k_agrees_with_scikit_learn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    z = rng.standard_normal((300, 10))
    y = rng.integers(0, 10, 300)
    for k in (1, 3, 9):
        want = metrics.top_k_accuracy_score(y, z, k=k, labels=np.arange(10))
        assert xent.evaluate(z, y, top_k=k, chunk_rows=17)["top_k_accuracy"] == pytest.approx(want, abs=1e-15)


def test_masks_and_one_class():
    z = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [2.0, 0.0, -np.inf]], np.float32)
    res = xent.evaluate(z, np.array([2, 0, 2]), chunk_rows=2)
    assert res["cross_entropy"] == np.inf and res["accuracy"] == 2 / 3  # argmax of the masked row is 0
    assert res["calibration"]["count"][0] == 1  # the fully masked row has confidence 0
    one = xent.evaluate(np.zeros((5, 1), np.float32), np.zeros(5, int))
    assert one["cross_entropy"] == 0 and one["accuracy"] == 1 and one["top_k"] == 1 and one["ece"] == 0


def test_one_hot_labels_and_merge(rng):
    z = rng.standard_normal((90, 8)).astype(np.float32)
    y = rng.integers(0, 8, 90)
    onehot = np.eye(8, dtype=np.float32)[y]
    a = xent.MetricsAccumulator(8).update(z[:50], onehot[:50])
    b = xent.MetricsAccumulator(8).update(z[50:], y[50:])
    check(a.merge(b).result(), reference(z, y))
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(xent.MetricsAccumulator(8, top_k=2))


def test_empty_accumulator_is_nan():
    r = xent.MetricsAccumulator(4).update(np.zeros((0, 4)), np.zeros(0, int)).result()
    assert r["n_rows"] == 0 and np.isnan(r["cross_entropy"]) and np.isnan(r["accuracy"]) and np.isnan(r["ece"])


@pytest.mark.parametrize(
    "z, y, kw, exc, match",
    [
        ("nan", [0, 1, 2, 0], {}, ValueError, r"predictions\[12, 2\] = nan"),
        ("inf", [0, 1, 2, 0], {}, ValueError, r"predictions\[12, 2\] = inf"),
        (None, [0, 3, 2, 0], {}, ValueError, r"labels\[11\] = 3 is out of range \[0, 3\)"),
        (None, [0, -1, 2, 0], {}, ValueError, r"labels\[11\] = -1"),
        (None, [0.0, 1.0, 2.0, 0.0], {}, TypeError, "labels must be integer"),
        ("neg", [0, 1, 2, 0], {"from_logits": False}, ValueError, r"predictions\[12, 2\] = -0.5: .* >= 0"),
        ("zero", [0, 1, 2, 0], {"from_logits": False}, ValueError, "row 12 sums to 0"),
    ],
)
def test_bad_batches_name_the_global_position(z, y, kw, exc, match):
    first = np.ones((10, 3))
    batch = np.ones((4, 3))
    if z == "nan":
        batch[2, 2] = np.nan
    elif z == "inf":
        batch[2, 2] = np.inf
    elif z == "neg":
        batch[2, 2] = -0.5
    elif z == "zero":
        batch[2] = 0
    acc = xent.MetricsAccumulator(3, **kw).update(first, np.zeros(10, int))
    with pytest.raises(exc, match=match):
        acc.update(batch, np.array(y))


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_classes"):
        xent.MetricsAccumulator(0)
    with pytest.raises(ValueError, match="top_k and n_bins"):
        xent.MetricsAccumulator(3, top_k=0)
    with pytest.raises(ValueError, match="not one-hot"):
        xent.MetricsAccumulator(3).update(np.zeros((2, 3)), np.array([[1, 0, 0], [1, 1, 0]]))
    with pytest.raises(ValueError, match="expected \\(rows, 3\\)"):
        xent.MetricsAccumulator(3).update(np.zeros((2, 4)), np.zeros(2, int))
    with pytest.raises(ValueError, match="2-d"):
        xent.evaluate(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="chunk_rows"):
        xent.evaluate(np.zeros((3, 2)), np.zeros(3, int), chunk_rows=0)


def test_inputs_are_not_modified(rng):
    z = rng.standard_normal((50, 4)).astype(np.float32)
    y = rng.integers(0, 4, 50)
    z0, y0 = z.copy(), y.copy()
    xent.evaluate(z, y, chunk_rows=7)
    xent.evaluate(np.abs(z), y, from_logits=False, chunk_rows=7)
    assert np.array_equal(z, z0) and np.array_equal(y, y0)


def test_unaligned_weights_are_accepted(rng):
    # Regression (found through xent.dask, whose blocks can arrive unaligned): weight and
    # sample_weight at an odd byte offset were rejected with "is not aligned".
    z = rng.standard_normal((6, 3)).astype(np.float32)
    y = rng.integers(0, 3, 6)

    def unaligned(a):
        buf = np.zeros(a.nbytes + 1, np.uint8)
        out = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1)
        out[...] = a
        assert not out.flags.aligned
        return out

    sw, w = rng.uniform(0.5, 2, 6).astype(np.float32), np.array([1.0, 2.0, 0.5], np.float32)
    want = xent.softmax_cross_entropy(z, y, weight=w, sample_weight=sw)
    assert xent.softmax_cross_entropy(z, y, weight=unaligned(w), sample_weight=unaligned(sw)) == want
