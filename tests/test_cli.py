"""The command line: rfm on a Parquet file, errors as one line with exit status 2, the demo."""
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import fastengage as fe
from fastengage.cli import main


@pytest.fixture
def retail_parquet(retail_table, tmp_path):
    path = tmp_path / "retail.parquet"
    pq.write_table(retail_table, path, row_group_size=100_000)
    return path


def test_rfm_command_streams_and_matches_the_api(retail_parquet, retail_table, tmp_path, capsys):
    out = tmp_path / "features.parquet"
    code = main(["rfm", str(retail_parquet), "--customer", "CustomerID", "--time", "InvoiceDate",
                 "--amount", "amount", "--order", "InvoiceNo", "--drop-null-customers",
                 "--as-of", "2011-11-01", "--batch-size", "100000", "-o", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "541,909 / 541,909 rows" in err and "after as_of 83,259" in err
    expected = fe.rfm(retail_table, customer="CustomerID", time="InvoiceDate", amount="amount",
                      order="InvoiceNo", drop_null_customers=True, as_of="2011-11-01")
    got = pq.read_table(out)
    assert got.drop_columns(["monetary_total", "monetary_mean", "m_score"]).equals(
        expected.drop_columns(["monetary_total", "monetary_mean", "m_score"]))


def test_bad_input_is_one_line_and_exit_2(retail_parquet, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fastengage", "rfm", str(retail_parquet), "--customer", "CustomerID",
         "--time", "InvoiceDate", "--amount", "amount", "-o", str(tmp_path / "x.parquet"), "-q", "--batch-size", "100000"],
        capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fastengage: error: customer column 'CustomerID' has 34915 null value(s) in rows 1..100,000;")


def test_demo_rfm_step(tmp_path):
    from fastengage.demo import rfm_step

    summary = rfm_step(tmp_path)
    assert "Champions" in summary and "null CustomerID dropped 135,080" in summary
    assert pq.read_table(tmp_path / "rfm.parquet").num_rows == 4339


def test_missing_extension_gives_a_readable_import_error():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'fastengage.kernels.common.idmap':\n"
        "            raise ImportError('simulated: extension not built')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import fastengage\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "compiled kernels are missing" in proc.stderr and "pip install -e ." in proc.stderr


def test_every_source_folder_is_a_package_that_setup_installs():
    """setup.py discovers subpackages by their __init__.py: a folder of modules without one
    would be left out of the wheel (the editable install would still hide it)."""
    import pathlib

    root = pathlib.Path(__file__).parent.parent / "fastengage"
    for folder in root.rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            assert (folder / "__init__.py").exists(), f"{folder} has modules but no __init__.py"


# -- hostile flags and streams (#10.13, #10.14) -------------------------------------------------
RFM_ARGS = ["--customer", "CustomerID", "--time", "InvoiceDate", "--amount", "amount",
            "--drop-null-customers"]


@pytest.mark.parametrize("flag, value", [("--batch-size", "-5"), ("--batch-size", "0"),
                                         ("--batch-size", "x"), ("--threads", "-3"),
                                         ("--threads", "0")])
def test_bad_flags_are_one_line_and_exit_2(retail_parquet, tmp_path, flag, value):
    proc = subprocess.run([sys.executable, "-m", "fastengage", "rfm", str(retail_parquet),
                           *RFM_ARGS, flag, value, "-o", str(tmp_path / "x.parquet")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastengage rfm: error: ") and flag in lines[0]
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_closed_or_full_stderr_does_not_fail_the_run(retail_parquet, tmp_path, redirect):
    out = tmp_path / "features.parquet"
    command = " ".join([sys.executable, "-m", "fastengage", "rfm", str(retail_parquet), *RFM_ARGS,
                        "--batch-size", "200000", "-o", str(out), redirect])
    proc = subprocess.run(["bash", "-c", command], capture_output=False, stdout=subprocess.PIPE)
    assert proc.returncode == 0
    assert pq.read_table(out).num_rows == 4339


def test_threads_flag_gives_the_same_table(retail_parquet, tmp_path):
    outs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.parquet"
        assert main(["rfm", str(retail_parquet), *RFM_ARGS, "-q", "--threads", threads,
                     "-o", str(out)]) == 0
        outs.append(pq.read_table(out))
    assert outs[0].equals(outs[1])


KILL_DURING_WRITE = """
import os, signal, sys
import pyarrow.parquet as pq
from fastengage.cli import main

real_write = pq.write_table
def write_then_die(table, where, **kw):
    with open(where, "wb") as f:
        f.write(b"PAR1")          # a partial file, as a writer interrupted mid-way leaves it
    os.kill(os.getpid(), signal.{signal})
    real_write(table, where, **kw)
pq.write_table = write_then_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_during_write_keeps_the_previous_output(retail_parquet, tmp_path, sig):
    out = tmp_path / "features.parquet"
    assert main(["rfm", str(retail_parquet), *RFM_ARGS, "-q", "-o", str(out)]) == 0
    before = out.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE.replace("{signal}", sig), "rfm",
                           str(retail_parquet), *RFM_ARGS, "-q", "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 130, proc.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.parquet", "retail.parquet"]


def test_failed_write_keeps_the_previous_output_and_leaves_no_temporary(tmp_path):
    from fastengage._io.output import atomic_output

    target = tmp_path / "out.bin"
    target.write_bytes(b"good")
    with pytest.raises(OSError):
        with atomic_output(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with atomic_output(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
