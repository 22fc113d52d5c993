"""show_config, the XENT_ISA override, ISA-vs-scalar agreement, and fork safety."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import xent
from conftest import GRAD_TOL, LOSS_TOL, RUNNABLE_ISAS
from xent import _core


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)


def test_show_config(capsys):
    info = xent.show_config()
    assert {"version", "isa", "compiled_isas", "n_threads"} <= set(info)
    assert info["isa"] in info["compiled_isas"] and "scalar" in info["compiled_isas"]
    assert info["n_threads"] >= 1
    assert "isa" in capsys.readouterr().out
    assert xent.show_config(print_out=False) == info


@pytest.mark.parametrize("name", RUNNABLE_ISAS)
def test_env_forces_isa(name):
    r = _run("import xent; print(xent.show_config(print_out=False)['isa'])", XENT_ISA=name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == name


def test_env_rejects_unknown_isa():
    r = _run("import xent", XENT_ISA="sse9")
    assert r.returncode != 0
    assert "XENT_ISA=sse9" in r.stderr and "available: scalar" in r.stderr


@pytest.mark.parametrize("name", sorted(set(_core.config()["compiled_isas"]) - set(RUNNABLE_ISAS)) or ["(none)"])
def test_env_rejects_isa_this_cpu_lacks(name):
    # a kernel set compiled in but not runnable here (AVX-512 on an AVX2-only CPU) is refused
    # like an unknown one, not run into SIGILL; on a CPU that runs every compiled set, the
    # check is that the list of runnable sets is the compiled one
    if name == "(none)":
        assert RUNNABLE_ISAS == list(_core.config()["compiled_isas"])
        return
    r = _run("import xent", XENT_ISA=name)
    assert r.returncode != 0
    assert f"XENT_ISA={name}" in r.stderr and "available: scalar" in r.stderr
    assert not _core.set_isa(name)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the x86-64 kernel sets")
def test_x86_64_builds_carry_both_vector_sets():
    # the best runnable set is the default: AVX-512 where the CPU has it, else AVX2
    assert _core.config()["compiled_isas"] == ["scalar", "avx2", "avx512"]


def test_best_isa_is_default():
    if "XENT_ISA" in os.environ:
        pytest.skip("XENT_ISA is set for this run")
    r = _run("import xent; print(xent.show_config(print_out=False)['isa'])")
    assert r.stdout.strip() == RUNNABLE_ISAS[-1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_isa_agrees_with_scalar(rng, dtype):
    before = _core.config()["isa"]
    x = (rng.standard_normal((64, 3001)) * 4).astype(dtype)
    x[3, ::7] = -np.inf
    y = rng.integers(0, 3001, 64)
    z = (rng.standard_normal(20_001) * 8).astype(dtype)
    t = rng.random(20_001).astype(dtype)
    results = {}
    try:
        for name in RUNNABLE_ISAS:
            assert _core.set_isa(name)
            results[name] = (
                xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True),
                xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True),
                xent.log_softmax(x),
            )
    finally:
        _core.set_isa(before)
    (l0, g0), (s0, h0), ls0 = results["scalar"]
    for name, ((l1, g1), (s1, h1), ls1) in results.items():
        np.testing.assert_allclose(l1, l0, **LOSS_TOL[dtype], err_msg=name)
        np.testing.assert_allclose(g1, g0, **GRAD_TOL[dtype], err_msg=name)
        np.testing.assert_allclose(s1, s0, **LOSS_TOL[dtype], err_msg=name)
        np.testing.assert_allclose(h1, h0, **GRAD_TOL[dtype], err_msg=name)
        np.testing.assert_allclose(ls1, ls0, **LOSS_TOL[dtype], err_msg=name)


def test_set_isa_rejects_unknown():
    assert not _core.set_isa("sse9")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs fork() and Linux's /proc")
def test_threads_work_after_fork():
    # the parent's pool threads do not exist in a forked child: it must make its own
    code = """
import os, numpy as np, xent
x = np.random.default_rng(0).standard_normal((4000, 500)).astype(np.float32)
y = np.zeros(4000, dtype=np.int64)
a = xent.softmax_cross_entropy(x, y, n_threads=2)
pid = os.fork()
if pid == 0:
    b = xent.softmax_cross_entropy(x, y, n_threads=2)
    # a fresh pool started a worker thread in the child (a stale one would run all alone)
    threads = len(os.listdir("/proc/self/task"))
    os._exit(0 if (b == a and threads >= 2) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"
