"""xent.dask on a dask.distributed LocalCluster with 2 worker processes: metrics, loss and
gradient equal the single-machine (NumPy) results; bad values raise with the global row."""
import numpy as np
import pytest

import xent

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
xd = pytest.importorskip("xent.dask")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(99)
    n, c = 2003, 29
    y = rng.integers(0, c, n)
    z = (2 * rng.standard_normal((n, c))).astype(np.float32)
    z[np.arange(n), y] += 2.0
    sw = rng.uniform(0, 2, n).astype(np.float32)
    w = rng.uniform(0.5, 1.5, c)
    return z, y, sw, w


def test_metrics_on_a_cluster_equal_in_memory(client, problem):
    z, y, _, _ = problem
    dz = da.from_array(z, chunks=(311, 10))  # uneven row blocks, classes split (merged by xent.dask)
    dy = da.from_array(y, chunks=500)  # labels chunked differently
    for kw in ({}, {"top_k": 2, "n_bins": 10}):
        got = xd.evaluate(dz, dy, split_every=3, **kw).compute()
        want = xent.evaluate(z, y, **kw)
        for key in ("n_rows", "n_classes", "top_k", "accuracy", "top_k_accuracy"):
            assert got[key] == want[key], key
        for key in ("cross_entropy", "perplexity", "ece"):
            assert got[key] == pytest.approx(want[key], rel=1e-12), key
        assert got["cross_entropy"] == pytest.approx(xent.softmax_cross_entropy(z, y), rel=1e-12)
        np.testing.assert_array_equal(got["per_class"]["support"], want["per_class"]["support"])
        np.testing.assert_allclose(got["per_class"]["loss"], want["per_class"]["loss"], rtol=1e-12)
        np.testing.assert_array_equal(got["calibration"]["count"], want["calibration"]["count"])
    p = xent.softmax(z.astype(np.float64))
    onehot = np.eye(z.shape[1], dtype=np.int8)[y]
    got = xd.evaluate(da.from_array(p, chunks=(400, -1)), onehot, from_logits=False).compute()
    want = xent.evaluate(p, y, from_logits=False)
    assert got["accuracy"] == want["accuracy"]
    assert got["cross_entropy"] == pytest.approx(want["cross_entropy"], rel=1e-12)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("options", ["plain", "weighted", "targets"])
def test_loss_and_gradient_on_a_cluster(client, problem, reduction, options):
    z, y, sw, w = problem
    labels, kw = y, {}
    if options == "weighted":
        labels = y.copy()
        labels[::7] = -100
        kw = dict(weight=w, sample_weight=sw, ignore_index=-100, label_smoothing=0.1, z_loss=1e-3)
    elif options == "targets":
        labels = np.random.default_rng(5).dirichlet(np.ones(z.shape[1]), len(y)).astype(np.float32)
        kw = dict(sample_weight=sw)
    dz = da.from_array(z, chunks=(250, -1))
    dkw = dict(kw)
    if "sample_weight" in kw:
        dkw["sample_weight"] = da.from_array(sw, chunks=700)
    loss, grad = xd.softmax_cross_entropy(dz, labels, reduction=reduction, return_grad=True, **dkw)
    loss_only = xd.softmax_cross_entropy(dz, labels, reduction=reduction, **dkw)
    want_loss, want_grad = xent.softmax_cross_entropy(z, labels, reduction=reduction, return_grad=True, **kw)
    got_loss, got_grad, got_only = client.compute([loss, grad, loss_only], sync=True)
    assert isinstance(grad, da.Array) and grad.shape == z.shape and grad.dtype == np.float32
    if reduction == "none":
        assert isinstance(loss, da.Array) and loss.shape == (len(y),)
        np.testing.assert_array_equal(got_loss, want_loss)  # rows do not depend on the blocking
        np.testing.assert_array_equal(got_only, want_loss)
    else:
        assert loss.shape == () and loss.dtype == np.float64
        assert float(got_loss) == pytest.approx(want_loss, rel=1e-12)
        assert float(got_only) == pytest.approx(want_loss, rel=1e-12)
    if reduction == "mean":  # the block's "sum" gradient times 1/denominator: one more rounding
        # |grad| <= max row weight / denominator; allow a few float32 ulp of that
        scale = np.abs(want_grad).max()
        np.testing.assert_allclose(got_grad, want_grad, rtol=4e-6, atol=4e-7 * scale)
    else:
        np.testing.assert_array_equal(got_grad, want_grad)


def test_bad_values_raise_with_the_global_row(client, problem):
    z, y, _, _ = problem
    nan = z.copy()
    nan[1234, 5] = np.nan
    with pytest.raises(ValueError, match=r"predictions\[1234, 5\] = nan"):
        xd.evaluate(da.from_array(nan, chunks=(300, -1)), y).compute()
    bad = y.copy()
    bad[1500] = 99
    with pytest.raises(ValueError, match=r"labels\[1500\] = 99 is out of range"):
        xd.evaluate(da.from_array(z, chunks=(300, -1)), bad).compute()


def test_argument_errors_are_eager():
    z = da.zeros((10, 3), chunks=4)
    with pytest.raises(ValueError, match="labels has 9 rows but the predictions have 10"):
        xd.evaluate(z, np.zeros(9, int))
    with pytest.raises(ValueError, match="top_k"):
        xd.evaluate(z, np.zeros(10, int), top_k=0)
    with pytest.raises(ValueError, match="reduction"):
        xd.softmax_cross_entropy(z, np.zeros(10, int), reduction="avg")
    with pytest.raises(ValueError, match="2-d"):
        xd.evaluate(da.zeros(10, chunks=4), np.zeros(10, int))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        xd.evaluate(z[z[:, 0] > -1], np.zeros(10, int))
