"""The JSON summary and the JUnit XML, built from known numbers."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fleet.reports import junit
from fleet.reports import summary as report
from fleet.reports.slo import evaluate_all, parse_all


def _group(times_ms: list[int], failures: int = 0) -> report.Group:
    hist: dict[int, int] = {}
    for t in times_ms:
        hist[t] = hist.get(t, 0) + 1
    return report.Group(len(times_ms), failures, float(sum(times_ms)), hist)


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_are_the_nearest_rank(seed: int) -> None:
    rng = random.Random(seed)
    times = [rng.randint(1, 400) for _ in range(rng.randint(1, 300))]
    ordered = sorted(times)
    g = _group(times)
    for p in report.PERCENTILES:
        # nearest rank: the smallest value with at least p of the requests at or below it
        rank = next(i for i in range(len(ordered)) if (i + 1) >= p * len(ordered))
        assert report.percentile(g.histogram, p) == ordered[rank]
    assert report.percentile({}, 0.95) is None


def test_a_window_is_the_difference_of_two_snapshots() -> None:
    before = _group([10, 20, 30])
    after = _group([10, 20, 30, 500, 600, 700, 800], failures=2)
    w = after.minus(before)
    assert (w.requests, w.failures, w.total_ms) == (4, 2, 2600.0)
    row = report.group_stats(w, 2.0)
    assert row["p50_ms"] == 600 and row["max_ms"] == 800 and row["min_ms"] == 500
    assert row["rps"] == 2.0 and row["error_rate"] == 0.5 and row["avg_ms"] == 650


def test_summary_layout() -> None:
    groups = {
        "BootNotification": _group([100, 200, 300, 400], failures=1),
        "Heartbeat": _group([5] * 96),
        "Authorize": report.Group(),  # nothing happened: left out
    }
    errors = [
        ("BootNotification", "OcppFailure('BootNotification Rejected')", 1),
        ("Heartbeat", "OcppFailure('CALLERROR InternalError')", 2),
        ("MeterValues", "OcppFailure('CALLERROR InternalError')", 1),
        ("Heartbeat", "OcppFailure('timeout')", 0),  # none in this window
    ]
    s = report.build(groups, 10.0, errors, {"stations_connected": 4}, stations_target=4)
    assert list(s["actions"]) == ["BootNotification", "Heartbeat"]
    boot = s["actions"]["BootNotification"]
    assert (boot["requests"], boot["failures"], boot["error_rate"]) == (4, 1, 0.25)
    assert boot["p50_ms"] == 200 and boot["p95_ms"] == 400 and boot["rps"] == 0.4
    assert s["total"]["requests"] == 100 and s["total"]["failures"] == 1
    assert s["total"]["p95_ms"] == 5 and s["total"]["p99_ms"] == 300
    assert s["errors_by_code"] == {"CALLERROR InternalError": 3, "BootNotification Rejected": 1}
    assert s["errors"][0] == {
        "action": "Heartbeat",
        "error": "CALLERROR InternalError",
        "occurrences": 2,
    }
    assert s["fleet"] == {"stations_connected": 4} and s["stations_target"] == 4

    results = evaluate_all(parse_all(["error_rate < 2%", "BootNotification.p95 < 300ms"]), s)
    done = report.with_results(s, results, {"summary": {"boots": 4}, "problems": []})
    assert done["passed"] is False
    assert [r["passed"] for r in done["slos"]] == [True, False]
    assert done["slos"][1]["measured"] == 400 and done["ledger"]["summary"] == {"boots": 4}
    json.dumps(done)  # plain JSON all the way down


def test_write_and_read_back(tmp_path: Path) -> None:
    s = report.build({"Heartbeat": _group([1, 2])}, 1.0, fleet={("a", "b"): 1})
    report.write(s, tmp_path / "s.json")
    back = report.read(tmp_path / "s.json")
    assert back["fleet"] == {"('a', 'b')": 1} and back["total"]["requests"] == 2
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a fleet summary"):
        report.read(tmp_path / "other.json")


def test_junit_has_one_case_per_slo_and_failures_carry_the_value(tmp_path: Path) -> None:
    s = report.build({"BootNotification": _group([1500, 2500, 2600, 2700])}, 30.0)
    texts = ["BootNotification.p95 < 2s", "error_rate < 1%", "Heartbeat.p99 < 1s"]
    results = evaluate_all(parse_all(texts), s)
    junit.write(tmp_path / "r.xml", results, s)
    root = ET.parse(tmp_path / "r.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("3", "2", "30.000")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == texts
    boot, rate, heartbeat = cases
    failure = boot.find("failure")
    assert failure is not None and failure.get("type") == "SLO"
    assert "2.7s" in (failure.get("message") or "") and "measured: 2.7s" in (failure.text or "")
    assert rate.find("failure") is None
    missing = heartbeat.find("failure")
    assert missing is not None and "no data" in (missing.get("message") or "")
    out = suite.find("system-out")
    assert out is not None and "BootNotification" in (out.text or "")


def test_junit_with_no_slos_is_an_empty_passing_suite() -> None:
    root = ET.fromstring(junit.render([], None))
    assert root.get("tests") == "0" and root.get("failures") == "0"
