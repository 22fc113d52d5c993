"""Results are identical, bit for bit, for any thread count (fixed work split, partial
sums combined in a fixed order), and calls from several Python threads agree."""
import sys
import threading

import numpy as np
import pytest

import xent

CASES = [(3000, 1000), (40, 50_000), (200_000, 3)]


@pytest.mark.parametrize("shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_losses_bit_identical(isa, rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, shape[1], shape[0])
    runs = [xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=n) for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss == runs[0][0]
        assert np.array_equal(grad, runs[0][1])
    sums = [xent.softmax_cross_entropy(x, y, reduction="sum", n_threads=n) for n in (1, 2, 3)]
    assert sums[0] == sums[1] == sums[2]
    outs = [xent.softmax(x, n_threads=n) for n in (1, 2, 3)]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("axis", [None, -1])
def test_sigmoid_bit_identical(isa, rng, axis):
    z = rng.standard_normal((1000, 700)).astype(np.float32)
    t = rng.random((1000, 700)).astype(np.float32)
    runs = [xent.sigmoid_cross_entropy(z, t, axis=axis, return_grad=True, n_threads=n) for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss == runs[0][0] and np.array_equal(grad, runs[0][1])


def test_concurrent_python_threads(rng):
    x = rng.standard_normal((2000, 500)).astype(np.float32)
    y = rng.integers(0, 500, 2000)
    expect_loss, expect_grad = xent.softmax_cross_entropy(x, y, return_grad=True)
    results = [None] * 8

    def work(i):
        results[i] = [xent.softmax_cross_entropy(x, y, return_grad=True) for _ in range(5)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for per in results:
        for loss, grad in per:
            assert loss == expect_loss and np.array_equal(grad, expect_grad)


def test_eight_python_threads_calling_every_function_match_serial_calls(rng):
    # every public function, with options and gradients, from 8 threads at once, each
    # thread with its own inputs and call order; the pool is shared (a call that finds it
    # busy runs alone): results must equal the serial ones bit for bit
    def case(i):
        r = np.random.default_rng(100 + i)
        x = r.standard_normal((300 + 17 * i, 257)).astype(np.float32 if i % 2 else np.float64)
        t = r.random(x.shape).astype(x.dtype)
        y = r.integers(0, 257, x.shape[0])
        w = (r.random(257) + 0.5).astype(x.dtype)
        return [
            lambda: xent.logsumexp(x, axis=0),
            lambda: xent.softmax(x),
            lambda: xent.log_softmax(x[:, ::2]),
            lambda: xent.softmax_cross_entropy(x, y, weight=w, ignore_index=3, z_loss=1e-3, label_smoothing=0.1,
                                               return_grad=True, n_threads=2),
            lambda: xent.softmax_cross_entropy(x, t, axis=0, reduction="none", return_grad=True),
            lambda: xent.sigmoid_cross_entropy(x, t, return_grad=True, n_threads=3),
            lambda: xent.sigmoid_cross_entropy(x, t, axis=1, reduction="none"),
        ]

    cases = [case(i) for i in range(8)]
    serial = [[f() for f in calls] for calls in cases]
    results = [None] * 8
    errors = []
    start = threading.Barrier(8)

    def work(i):
        try:
            start.wait()
            calls = cases[i]
            order = list(range(len(calls))) * 3
            np.random.default_rng(i).shuffle(order)
            out = [None] * len(calls)
            for k in order:
                out[k] = calls[k]()
            results[i] = out
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for got, want in zip(results, serial):
        for g, w in zip(got, want):
            for a, b in zip(g if isinstance(g, tuple) else (g,), w if isinstance(w, tuple) else (w,)):
                assert np.array_equal(a, b)


def _run(code, **env):
    import os
    import subprocess
    import sys

    e = dict(os.environ)
    e.pop("XENT_SPIN_US", None)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)


def test_spin_setting_default_env_and_setter():
    r = _run("import xent; print(xent.show_config(print_out=False)['spin_us'])")
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == 100.0
    for value, want in (("0", 0.0), ("250.5", 250.5), ("1e6", 1e6)):
        r = _run("import xent; print(xent.show_config(print_out=False)['spin_us'])", XENT_SPIN_US=value)
        assert r.returncode == 0, r.stderr
        assert float(r.stdout) == want
    before = xent.show_config(print_out=False)["spin_us"]
    try:
        for bad in (-1.0, float("nan"), float("inf"), 1e6 + 1):
            assert not xent._core.set_spin_us(bad)
            assert xent.show_config(print_out=False)["spin_us"] == before
        assert xent._core.set_spin_us(7.5)
        assert xent.show_config(print_out=False)["spin_us"] == 7.5
    finally:
        xent._core.set_spin_us(before)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "2e6", "10us"])
def test_spin_env_rejects_bad_values(value):
    r = _run("import xent", XENT_SPIN_US=value)
    assert r.returncode != 0
    assert f"XENT_SPIN_US={value}" in r.stderr and "microseconds" in r.stderr


# A process that made a threaded call, then sleeps: its CPU time over the sleep shows
# whether the pool's threads still poll (the spin's bound) or sleep.
_IDLE = """
import resource, time, numpy as np, xent
x = np.random.default_rng(0).standard_normal((4000, 500)).astype(np.float32)
y = np.zeros(4000, dtype=np.int64)
for _ in range(20):
    xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=2)
time.sleep(0.05)
r0 = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.5)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime))
"""


@pytest.mark.skipif(sys.platform != "linux" or xent.show_config(print_out=False)["n_threads"] < 2,
                    reason="needs Linux and two cores")
def test_idle_threads_sleep_after_the_spin():
    # (OpenBLAS's own threads, which poll for a while after NumPy's import, kept out)
    idle = _run(_IDLE, OPENBLAS_NUM_THREADS="1")
    assert idle.returncode == 0, idle.stderr
    assert float(idle.stdout) < 0.1
    # the control: a spin longer than the sleep keeps a helper polling through it
    busy = _run(_IDLE, OPENBLAS_NUM_THREADS="1", XENT_SPIN_US="1e6")
    assert busy.returncode == 0, busy.stderr
    assert float(busy.stdout) > 0.2


@pytest.mark.parametrize("spin", [0.0, 100.0, 1e4])
def test_quick_successive_calls_bit_identical_for_any_spin(rng, spin):
    # with the helpers polling (or sleeping) between calls, every call's result is that of
    # one thread, whatever the helper joined or missed; n_threads=3 has a helper beyond the cores
    x = rng.standard_normal((600, 300)).astype(np.float32)
    y = rng.integers(0, 300, 600)
    z = rng.standard_normal(200_000).astype(np.float32)
    t = rng.random(200_000).astype(np.float32)
    want = xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=1)
    wants = xent.sigmoid_cross_entropy(z, t, return_grad=True, n_threads=1)
    before = xent.show_config(print_out=False)["spin_us"]
    try:
        assert xent._core.set_spin_us(spin)
        for k in range(60):
            n = 2 + k % 2
            loss, grad = xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=n)
            assert loss == want[0] and np.array_equal(grad, want[1])
            loss, grad = xent.sigmoid_cross_entropy(z, t, return_grad=True, n_threads=n)
            assert loss == wants[0] and np.array_equal(grad, wants[1])
    finally:
        xent._core.set_spin_us(before)
