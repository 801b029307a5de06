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
