"""`xent eval`: every input format gives the in-memory results; bad files give one error line
on stderr and exit status 2, never a traceback; --demo, --json, --plot, the console script."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import xent
from xent.cli import main


@pytest.fixture
def data(rng):
    n, c = 1003, 11
    y = rng.integers(0, c, n)
    z = (2 * rng.standard_normal((n, c))).astype(np.float32)
    z[np.arange(n), y] += 2.0
    return z, y


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json", "--quiet")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def same_as_in_memory(got, z, y, **kw):
    want = xent.evaluate(z, y, **kw)
    for key in ("n_rows", "n_classes", "top_k", "accuracy", "top_k_accuracy"):
        assert got[key] == want[key], key
    for key in ("cross_entropy", "perplexity", "ece"):
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert got["per_class"]["support"] == want["per_class"]["support"].tolist()
    np.testing.assert_allclose(got["per_class"]["loss"], want["per_class"]["loss"], rtol=1e-12)
    assert got["cross_entropy"] == pytest.approx(xent.softmax_cross_entropy(z, y), rel=1e-12)


@pytest.mark.parametrize("chunk_rows", [1, 100, 1000, 5000])
def test_npy_files(tmp_path, capsys, data, chunk_rows):
    z, y = data
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y.astype(np.int32))
    got = run_json(capsys, "eval", tmp_path / "z.npy", tmp_path / "y.npy", "--chunk-rows", chunk_rows, "--top-k", 3)
    same_as_in_memory(got, z, y, top_k=3)
    assert got["input"] == "logits" and got["predictions"] == "z.npy"


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_one_file_and_one_hot(tmp_path, capsys, data, compressed):
    z, y = data
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "d.npz", logits=z, labels=y, onehot=np.eye(z.shape[1], dtype=np.uint8)[y])
    same_as_in_memory(run_json(capsys, "eval", tmp_path / "d.npz", "--chunk-rows", 64), z, y)
    got = run_json(capsys, "eval", tmp_path / "d.npz", "--labels-key", "onehot", "--chunk-rows", 999)
    same_as_in_memory(got, z, y)


def test_probabilities(tmp_path, capsys, data):
    z, y = data
    p = xent.softmax(z.astype(np.float64))
    np.savez(tmp_path / "p.npz", probs=p, labels=y)
    got = run_json(capsys, "eval", tmp_path / "p.npz", "--from-probs", "--chunk-rows", 77)
    want = xent.evaluate(p, y, from_logits=False)
    assert got["input"] == "probabilities" and got["accuracy"] == want["accuracy"]
    assert got["cross_entropy"] == pytest.approx(want["cross_entropy"], rel=1e-12)
    # p = softmax(z) to float64 rounding: the same cross-entropy as from the logits
    assert got["cross_entropy"] == pytest.approx(xent.softmax_cross_entropy(z.astype(np.float64), y), rel=1e-9)


@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_parquet_and_arrow(tmp_path, capsys, data, fmt):
    pa = pytest.importorskip("pyarrow")
    z, y = data
    c = z.shape[1]
    table = pa.table({
        "logits": pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), c),
        "logits_var": pa.array(list(z)),  # a variable-length list column
        "labels": pa.array(y),
    })
    path = tmp_path / f"d.{fmt}"
    if fmt == "parquet":
        pytest.importorskip("pyarrow.parquet").write_table(table, path, row_group_size=300)
    else:
        pytest.importorskip("pyarrow.feather").write_feather(table, path, chunksize=250)
    same_as_in_memory(run_json(capsys, "eval", path, "--chunk-rows", 128), z, y)
    same_as_in_memory(run_json(capsys, "eval", path, "--logits-key", "logits_var", "--chunk-rows", 1000), z, y)


def test_table_and_plot(tmp_path, capsys, data):
    pytest.importorskip("matplotlib")
    z, y = data
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    code, out, err = run(capsys, "eval", tmp_path / "z.npy", tmp_path / "y.npy", "--plot", tmp_path / "r.png",
                         "--classes", 3)
    assert code == 0 and err == ""  # stderr is not a terminal here: no progress bar
    want = xent.evaluate(z, y)
    assert f"{want['cross_entropy']:.6f}" in out and f"{100 * want['accuracy']:.2f}%" in out
    assert "the 3 of 11 with the highest loss" in out
    worst = int(np.nanargmax(want["per_class"]["loss"]))
    assert f"{worst:>8}  {want['per_class']['support'][worst]:>8,}" in out
    png = (tmp_path / "r.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_demo(capsys):
    code, out, err = run(capsys, "eval", "--demo", "--quiet")
    assert code == 0 and err == ""
    assert "demo logits" in out and "ECE (15 bins)" in out
    from xent.cli import demo_data

    got = run_json(capsys, "eval", "--demo")
    same_as_in_memory(got, *demo_data())
    assert 0.02 < got["ece"] < 0.2  # the demo model is visibly mis-calibrated


def _write(tmp_path, name, a):
    np.save(tmp_path / name, a)
    return tmp_path / name


def test_bad_files_give_one_line_and_status_2(tmp_path, capsys):
    z = np.zeros((20, 4), np.float32)
    y = np.zeros(20, np.int64)
    zp, yp = _write(tmp_path, "z.npy", z), _write(tmp_path, "y.npy", y)
    nan = z.copy()
    nan[13, 2] = np.nan
    bad_label = y.copy()
    bad_label[17] = 4
    (tmp_path / "text.npy").write_text("hello")
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "z.npy").read_bytes()[:-10])
    np.savez(tmp_path / "d.npz", logits=z)
    cases = [
        ([tmp_path / "missing.npy", yp], "missing.npy: no such file"),
        ([zp, _write(tmp_path, "y19.npy", y[:19])], "y19.npy: has 19 rows but z.npy has 20"),
        ([_write(tmp_path, "zi.npy", z.astype(int)), yp], "zi.npy: holds int64"),
        ([_write(tmp_path, "z3.npy", z[None]), yp], "expected floating-point predictions of shape (rows, classes)"),
        ([zp, _write(tmp_path, "yf.npy", y.astype(float))], "yf.npy: holds float64; expected integer"),
        ([zp, _write(tmp_path, "y2.npy", np.zeros((20, 3)))], "expected integer labels (20,) or one-hot rows (20, 4)"),
        ([_write(tmp_path, "nan.npy", nan), yp], "nan.npy: predictions[13, 2] = nan"),
        ([zp, _write(tmp_path, "yb.npy", bad_label)], "yb.npy: labels[17] = 4 is out of range [0, 4)"),
        ([tmp_path / "text.npy", yp], "text.npy: not a valid .npy array"),
        ([tmp_path / "trunc.npy", yp], "trunc.npy: file is truncated"),
        ([tmp_path / "d.npz"], "d.npz: has no array 'labels' (it has: logits)"),
        ([tmp_path / "z.txt", yp], "no such file"),
        ([tmp_path, yp], "is a directory"),
        ([zp, yp, "--top-k", "0"], "--top-k must be >= 1"),
        ([_write(tmp_path, "empty.npy", z[:0]), _write(tmp_path, "ye.npy", y[:0])], "empty.npy: has no rows"),
        ([], "give a predictions file"),
        ([zp], "z.npy: a .npy file holds one array: give the labels file too"),
    ]
    (tmp_path / "z.txt").write_text("1 2 3")
    cases[11] = ([tmp_path / "z.txt", yp], "z.txt: unknown file type")
    for argv, message in cases:
        code, out, err = run(capsys, "eval", *argv, "--chunk-rows", 8)
        assert code == 2, (argv, err)
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("xent eval: error: ") and message in err, (message, err)


def test_parquet_errors(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"logits": pa.array([[0.0, 1.0], [1.0], [2.0, 0.0]]), "labels": [0, 1, 1]}),
                   tmp_path / "ragged.parquet")
    pq.write_table(pa.table({"logits": pa.array([[0.0, 1.0], None]), "labels": [0, 1]}), tmp_path / "null.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    for name, message in [("ragged", "row 1 has 1 values, expected 2"), ("null", "row 1 is null"),
                          ("junk", "cannot be read as Parquet")]:
        code, out, err = run(capsys, "eval", tmp_path / f"{name}.parquet")
        assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err


def test_console_script_and_module(tmp_path):
    script = shutil.which("xent", path=os.path.dirname(sys.executable)) or shutil.which("xent")
    env = {**os.environ, "COLUMNS": "100"}
    r = subprocess.run([sys.executable, "-m", "xent", "eval", "--demo", "--json"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert json.loads(r.stdout)["n_rows"] == 4000
    assert script is not None, "the xent console script is not installed"
    r = subprocess.run([script, "eval", str(tmp_path / "nope.npy"), "y.npy"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.strip() == f"xent eval: error: {tmp_path / 'nope.npy'}: no such file"
    r = subprocess.run([script], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "eval" in r.stderr


def _run_on_a_terminal(argv):
    """Runs `python -m xent` with stderr on a pseudo-terminal; returns (status, stdout, terminal text)."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100 characters
    r = subprocess.run([sys.executable, "-m", "xent", *argv], stdout=subprocess.PIPE, stderr=slave, timeout=120)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal has no writer left
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return r.returncode, r.stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(tmp_path):
    pytest.importorskip("tqdm")
    z = np.zeros((5000, 3), np.float32)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", np.zeros(5000, np.int64))
    argv = ["eval", str(tmp_path / "z.npy"), str(tmp_path / "y.npy"), "--chunk-rows", "1000", "--json"]
    code, out, term = _run_on_a_terminal(argv)
    assert code == 0 and json.loads(out)["n_rows"] == 5000
    assert "xent eval" in term and "5.00k/5.00k" in term and "rows" in term, term
    code, out, term = _run_on_a_terminal([*argv, "--quiet"])
    assert code == 0 and term == ""


@pytest.mark.parametrize("missing, argv, message", [
    ("matplotlib", ["--demo", "--plot", "x.png"], "--plot needs matplotlib (pip install 'xent[eval]')"),
    ("pyarrow", ["d.parquet"], "d.parquet: reading Parquet/Arrow files needs pyarrow"),
])
def test_missing_optional_package(tmp_path, capsys, monkeypatch, missing, argv, message):
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.chdir(tmp_path)
    for name in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if it were not installed
    code, out, err = run(capsys, "eval", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x.png").exists()
