"""The regression checker: passes within the tolerance, fails beyond it, in either figure."""
import json

from bench import regress


def _write(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def _rec(median, ref=0.1, ratio=3.0, name="rfm_a", size="full"):
    return {"name": name, "size": size, "median_s": median, "reference_s": ref,
            "ratios": {"polars": ratio}}


def test_check_and_update(tmp_path, capsys):
    results, baseline = tmp_path / "r.jsonl", tmp_path / "b.json"
    _write(results, [_rec(1.0)])
    assert regress.main(["update", "--results", str(results), "--baseline", str(baseline)]) == 0
    # a slower machine: everything 2x slower, reference too -> same normalized time, passes
    _write(results, [_rec(2.0, ref=0.2, ratio=2.9)])
    assert regress.main(["check", "--results", str(results), "--baseline", str(baseline)]) == 0
    # 50% slower against the same reference: fails
    _write(results, [_rec(1.5)])
    assert regress.main(["check", "--results", str(results), "--baseline", str(baseline)]) == 1
    assert "REGRESSION rfm_a@full: normalized time" in capsys.readouterr().out
    # the peer ratio collapsing fails too
    _write(results, [_rec(1.0, ratio=1.5)])
    assert regress.main(["check", "--results", str(results), "--baseline", str(baseline),
                         "--tolerance", "0.3"]) == 1
    # a benchmark not run is reported, not failed
    _write(results, [_rec(1.0, name="other")])
    assert regress.main(["check", "--results", str(results), "--baseline", str(baseline)]) == 0
    assert "missing (not run): rfm_a@full" in capsys.readouterr().out


def test_normalized_time_needs_the_same_yardstick_and_machine(tmp_path, capsys):
    results, baseline = tmp_path / "r.jsonl", tmp_path / "b.json"
    tagged = dict(_rec(1.0), reference="yardstick-2", machine="cpu A x2")
    _write(results, [tagged])
    assert regress.main(["update", "--results", str(results), "--baseline", str(baseline)]) == 0
    saved = json.loads(baseline.read_text())["rfm_a@full"]
    assert saved["reference"] == "yardstick-2" and saved["machine"] == "cpu A x2"
    # 3x slower on the same machine with the same yardstick: a regression
    _write(results, [dict(tagged, median_s=3.0)])
    assert regress.main(["check", "--results", str(results), "--baseline", str(baseline)]) == 1
    # the same figure from another CPU, or normalized by another workload: not compared, said so
    for other in ({"machine": "cpu B x2"}, {"reference": None}):
        capsys.readouterr()
        _write(results, [dict(tagged, median_s=3.0, **other)])
        assert regress.main(["check", "--results", str(results), "--baseline", str(baseline)]) == 0
        out = capsys.readouterr().out
        assert "note: rfm_a@full: normalized time not compared" in out
    # ...but its peer ratios still are
    _write(results, [dict(tagged, median_s=3.0, machine="cpu B x2", ratios={"polars": 1.0})])
    assert regress.main(["check", "--results", str(results), "--baseline", str(baseline)]) == 1


def test_yardstick_is_fixed_work():
    from fastengage.kernels.common import yardstick
    from fastengage.tools import benchrun

    table = yardstick.make_table()
    # the same checksum every run: the workload cannot drift with inputs or libraries
    assert yardstick.run(table, 10_000) == yardstick.run(table, 10_000)
    assert yardstick.run(table, 10_000) != yardstick.run(table, 20_000)
    assert benchrun.reference_seconds(repeats=1) > 0
    assert "x" in benchrun.machine()


def test_since_keeps_one_runs_records(tmp_path):
    results, baseline = tmp_path / "r.jsonl", tmp_path / "b.json"
    _write(results, [dict(_rec(1.0, name="old"), time="2026-12-01T10:00:00"),
                     dict(_rec(2.0, name="new"), time="2026-12-02T09:20:00")])
    assert regress.main(["update", "--results", str(results), "--baseline", str(baseline),
                         "--since", "2026-12-02T09:13"]) == 0
    assert set(json.loads(baseline.read_text())) == {"new@full"}
