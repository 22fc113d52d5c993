"""Inputs found by the fuzz target (fuzz/fuzz_api.py), replayed with its invariants: a clean
ValueError/TypeError or a result of the right shape, no NaN for clean input, inputs unmodified.
Each file in fuzz/regressions/ made the target fail before the fix named by its file name."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "fuzz" / "regressions").glob("*.bin"))


def _target():
    spec = importlib.util.spec_from_file_location("fuzz_api", ROOT / "fuzz" / "fuzz_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_there_are_regressions():
    assert CASES, "fuzz/regressions/ is empty"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fuzz_regression(path):
    _target().check(path.read_bytes())


def test_fuzz_corpus_replays_clean():
    # .ci/run fuzzes first (writing build/fuzz/corpus) and then runs this suite under ASan +
    # UBSan (.ci/asan): the corpus, inputs of distinct coverage, is replayed on the sanitized
    # build here (atheris itself loses its coverage feedback with the ASan runtime preloaded)
    corpus = sorted((ROOT / "build" / "fuzz" / "corpus").glob("*"))
    if not corpus:
        pytest.skip("no fuzz corpus in build/fuzz/corpus (written by .ci/run's fuzz step)")
    check = _target().check
    for path in corpus:
        check(path.read_bytes())
