"""benchmarks/audit_quality.py --seeds: seed parsing, the per-seed summary and the results file.

The measurements themselves (which train models) run in the benchmark, not here; these tests
check the bookkeeping that turns several seeds' figures into mean and spread.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "audit_quality.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("audit_quality_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _suspect_result(k: int, hits: int, found: int, true_pos: int, accuracy=0.9) -> dict:
    return {
        "flipped": 20,
        "media_scored_out_of_sample": 200,
        "planted_among_scored": k,
        "top_k_precision": round(hits / k, 4),
        "top_k_planted": hits,
        "flagged": {
            "planted": k,
            "found": found,
            "true_positives": true_pos,
            "recall": round(true_pos / k, 4),
            "precision": round(true_pos / found, 4) if found else None,
        },
        "run_test_accuracy": accuracy,
        "seconds": 10.0,
    }


def test_seeds_parsed_and_development_seeds_refused(bench):
    assert bench.parse_seeds("3001,3002, 3003") == [3001, 3002, 3003]
    assert bench.parse_seeds(str(bench.SEED)) == [bench.SEED]
    for tuned in ("7", "100", "101", "102", "3001,102"):
        with pytest.raises(ValueError, match="developing the audit"):
            bench.parse_seeds(tuned)
    # the gesture part generates with seed + 1: 99 would generate with 100
    with pytest.raises(ValueError, match=r"\[6, 99\]"):
        bench.parse_seeds("6,99")
    with pytest.raises(ValueError, match="integers"):
        bench.parse_seeds("3001,x")
    with pytest.raises(ValueError, match="distinct"):
        bench.parse_seeds("3001,3001")
    with pytest.raises(ValueError, match="distinct"):
        bench.parse_seeds(",")


def test_summary_mean_sd_and_pooled_top_k(bench):
    by_seed = {
        "3001": _suspect_result(k=8, hits=6, found=6, true_pos=4),
        "3002": _suspect_result(k=10, hits=9, found=8, true_pos=8),
        "3003": _suspect_result(k=6, hits=3, found=0, true_pos=0),  # nothing flagged
    }
    summary = bench.summarise("gestures", by_seed)
    assert summary["seeds"] == ["3001", "3002", "3003"]
    top = [6 / 8, 9 / 10, 3 / 6]
    assert summary["top_k_precision"]["n"] == 3
    assert math.isclose(summary["top_k_precision"]["mean"], np.mean(top), abs_tol=1e-4)
    assert math.isclose(summary["top_k_precision"]["sd"], np.std(top, ddof=1), abs_tol=1e-4)
    assert summary["top_k_precision"]["min"] == 0.5
    assert summary["top_k_precision"]["max"] == 0.9
    # a seed that flagged nothing has no precision: left out, and n says so
    assert summary["flagged.precision"]["n"] == 2
    assert math.isclose(summary["flagged.precision"]["mean"], np.mean([4 / 6, 1.0]), abs_tol=1e-4)
    assert summary["flagged.recall"]["n"] == 3
    assert summary["planted_among_scored"]["mean"] == 8.0
    assert summary["pooled_top_k"] == {"planted_in_top_k": 18, "k": 24, "precision": 0.75}
    assert summary["target_top_k"] == 0.7
    assert summary["mean_meets_target"] is True  # mean 0.7167
    by_seed["3004"] = _suspect_result(k=8, hits=3, found=2, true_pos=2)
    assert bench.summarise("gestures", by_seed)["mean_meets_target"] is False  # mean 0.6312


def test_summary_of_one_seed_has_no_spread(bench):
    summary = bench.summarise(
        "digits", {"2026": _suspect_result(k=49, hits=44, found=39, true_pos=39)}
    )
    assert summary["top_k_precision"]["sd"] is None
    assert summary["top_k_precision"]["n"] == 1
    assert summary["mean_meets_target"] is True


def test_results_file_merges_seeds_and_keeps_the_historic_keys(bench, tmp_path):
    out = tmp_path / "audit_quality.json"
    out.write_text(json.dumps({"duplicates": {"media": 448}, "seed": bench.SEED}))
    first = _suspect_result(k=8, hits=6, found=6, true_pos=4)
    bench._write(out, "gestures", 3001, first)
    data = json.loads(out.read_text())
    assert data["duplicates"] == {"media": 448}  # other parts untouched
    assert "gestures" not in data  # the part's own key holds only the default seed's figures
    assert data["by_seed"]["gestures"]["3001"] == first
    assert data["summary"]["gestures"]["seeds"] == ["3001"]

    default = _suspect_result(k=10, hits=9, found=8, true_pos=8)
    bench._write(out, "gestures", bench.SEED, default)
    data = json.loads(out.read_text())
    assert data["gestures"] == default and data["seed"] == bench.SEED
    assert sorted(data["by_seed"]["gestures"]) == sorted(["3001", str(bench.SEED)])
    assert data["summary"]["gestures"]["pooled_top_k"]["k"] == 18
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_options_are_usage_errors(bench, tmp_path, capsys):
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--seeds", "7", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "developing the audit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--only", "digit", "--seeds", "3001", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "unknown parts ['digit']" in capsys.readouterr().err
    assert not out.exists()
