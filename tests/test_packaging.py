"""Packaging: `import xent` is fast and pulls in no optional dependency; the version has one
source (pyproject.toml); the type information (py.typed, _core.pyi) ships with the package.

The import is probed in a fresh interpreter (this process has imported everything already).
Its time is a speed target, so it is measured in bench/import_time.py, not asserted here.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xent

ROOT = Path(__file__).resolve().parents[1]
# Peers and heavy optional packages: none may be imported by `import xent`.
FORBIDDEN = set(
    "torch jax jaxlib optax tensorflow keras scipy sklearn pandas matplotlib numba dask hypothesis pytest"
    " distributed pyarrow tqdm ml_dtypes".split()
) | {"importlib.metadata"}  # read lazily, for xent.__version__
PROBE = """
import json, sys, time
before = set(sys.modules)
t = time.perf_counter()
import xent
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "new": sorted(set(sys.modules) - before)}))
"""


def _probe():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_import_pulls_in_no_optional_dependency():
    new = _probe()["new"]
    assert "xent._core" in new and "numpy" in new
    assert not FORBIDDEN & set(new), sorted(FORBIDDEN & set(new))
    if sys.version_info >= (3, 10):
        # beyond the standard library, only NumPy and xent itself
        top = {m.split(".")[0] for m in new} - set(sys.stdlib_module_names)
        assert top <= {"numpy", "xent"}, sorted(top)


def _pyproject_version():
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    m = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M)
    assert m, "no version in pyproject.toml's [project]"
    return m.group(1)


def test_linear_model_is_lazy_and_imports_sklearn_only_when_used():
    pytest.importorskip("sklearn")
    code = (
        "import sys, xent; a = 'sklearn' in sys.modules or 'xent.linear_model' in sys.modules; "
        "m = xent.linear_model; print(a, 'sklearn' in sys.modules, m.SoftmaxRegression.__name__, "
        "m is sys.modules['xent.linear_model'])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True", "SoftmaxRegression", "True"]


def test_version_has_one_source():
    v = _pyproject_version()
    assert xent.__version__ == v
    assert xent.show_config(print_out=False)["version"] == v
    # no other file of the package or of the C++ core writes it down
    for path in [*(ROOT / "python").rglob("*.py"), *(ROOT / "cpp").rglob("*.[ch]pp"), ROOT / "CMakeLists.txt"]:
        assert v not in path.read_text(), f"{path} repeats the version {v}"


def test_version_is_lazy_and_getattr_rejects_other_names():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = xent.nope
    code = (
        "import sys, xent; a = 'importlib.metadata' in sys.modules; "
        "v = xent.__version__; print(a, 'importlib.metadata' in sys.modules, v)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True", _pyproject_version()]


def test_type_information_is_installed():
    pkg = Path(xent.__file__).parent
    assert (pkg / "py.typed").is_file()
    stub = (pkg / "_core.pyi").read_text()
    for name in ("softmax_op", "find_bad_label", "sigmoid_op", "config", "set_isa", "vector_math", "SoftmaxOp"):
        assert re.search(rf"^(def|class) {name}\b", stub, re.M), f"_core.pyi lacks {name}"
        assert hasattr(xent._core, name)
