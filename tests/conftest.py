import os

import numpy as np
import pytest

from xent import _core

RUNNABLE_ISAS = list(_core.config()["runnable_isas"])


def pytest_report_header(config):
    return f"xent._core: {_core.__file__} (isa {_core.config()['isa']}, runnable {', '.join(RUNNABLE_ISAS)})"


def pytest_sessionstart(session):
    # .ci/asan sets this: the tests must run against the sanitized build, not the installed one
    want = os.environ.get("XENT_EXPECT_CORE")
    if want and os.path.realpath(_core.__file__) != os.path.realpath(want):
        raise pytest.UsageError(f"xent._core was imported from {_core.__file__}, expected {want}")


@pytest.fixture(params=RUNNABLE_ISAS)
def isa(request):
    """Runs a test once per kernel set this machine can run, restoring the default after."""
    before = _core.config()["isa"]
    assert _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# Tolerances of the accuracy contract (SEMANTICS.md): per-row losses.
LOSS_TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}
# Probabilities and gradients: a few ulp of the largest term in the row.
GRAD_TOL = {np.float32: dict(rtol=4e-6, atol=4e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}
