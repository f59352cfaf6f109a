"""SLO expressions: what parses (and into which base units), what is refused and why,
and how each evaluates against a run summary."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.reports.slo import SloError, evaluate, parse, parse_all, table


@pytest.mark.parametrize(
    ("text", "metric", "action", "stat", "op", "threshold"),
    [
        ("BootNotification.p95 < 2s", "BootNotification.p95", "BootNotification", "p95", "<", 2000),
        ("Heartbeat.p50<=250ms", "Heartbeat.p50", "Heartbeat", "p50", "<=", 250),
        ("  MeterValues.max < 1.5s ", "MeterValues.max", "MeterValues", "max", "<", 1500),
        ("StartTransaction.avg < .5s", "StartTransaction.avg", "StartTransaction", "avg", "<", 500),
        ("Authorize.error_rate < 1%", "Authorize.error_rate", "Authorize", "error_rate", "<", 0.01),
        ("Heartbeat.rps >= 100", "Heartbeat.rps", "Heartbeat", "rps", ">=", 100),
        ("StatusNotification.requests > 0", "StatusNotification.requests", "StatusNotification",
         "requests", ">", 0),
        ("error_rate < 1%", "error_rate", None, "error_rate", "<", 0.01),
        ("error_rate <= 0.005", "error_rate", None, "error_rate", "<=", 0.005),
        ("p99 < 500ms", "p99", None, "p99", "<", 500),
        ("rps > 10", "rps", None, "rps", ">", 10),
        ("lost_transaction_messages == 0", "lost_transaction_messages", None,
         "lost_transaction_messages", "==", 0),
        ("callerrors != 3", "callerrors", None, "callerrors", "!=", 3),
        ("callerrors.InternalError == 0", "callerrors.InternalError", None,
         "callerrors.InternalError", "==", 0),
        ("timeouts == 0", "timeouts", None, "timeouts", "==", 0),
        ("stations_connected >= 500", "stations_connected", None, "stations_connected", ">=", 500),
        ("connected_ratio >= 99.5%", "connected_ratio", None, "connected_ratio", ">=", 0.995),
        ("ledger_problems == 0", "ledger_problems", None, "ledger_problems", "==", 0),
    ],
)  # fmt: skip
def test_parses(
    text: str, metric: str, action: str | None, stat: str, op: str, threshold: float
) -> None:
    slo = parse(text)
    assert (slo.metric, slo.action, slo.stat, slo.op) == (metric, action, stat, op)
    assert slo.threshold == pytest.approx(threshold)
    assert slo.text == text.strip()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "expected '<metric> <op> <number>[unit]'"),
        ("BootNotification.p95", "expected '<metric> <op> <number>[unit]'"),
        ("BootNotification.p95 < fast", "expected '<metric> <op> <number>[unit]'"),
        ("BootNotification.p95 = 2s", "use '==' to compare for equality"),
        ("BootNotification.p95 < 2", "give a unit, ms or s"),
        ("BootNotification.p95 < 2h", "unit 'h' is not ms or s"),
        ("BootNotfication.p95 < 2s", "unknown OCPP action 'BootNotfication' "
         "(did you mean BootNotification?)"),
        ("RemoteStartTransaction.p95 < 2s", "unknown OCPP action"),
        ("Heartbeat.p96 < 2s", "unknown statistic 'p96'"),
        ("Heartbeat.p95.x < 2s", "at most one '.'"),
        ("BootNotification < 2s", "BootNotification needs a statistic"),
        ("latency < 2s", "unknown metric 'latency'"),
        ("error_rate < 1s", "is a ratio: unit 's' is not %"),
        ("lost_transaction_messages == 0%", "is a count: no unit"),
        ("rps > 10ms", "is a rate per second: no unit"),
        ("callerrors.Oops == 0", "unknown CALLERROR code 'Oops'"),
    ],
)  # fmt: skip
def test_refuses_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(SloError) as info:
        parse(text)
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_all_names_the_bad_expression() -> None:
    with pytest.raises(SloError, match=r"^--slo 'Heartbeat.p95 < 2': .*unit"):
        parse_all(["error_rate < 1%", "Heartbeat.p95 < 2"])


SUMMARY: dict[str, Any] = {
    "stations_target": 10,
    "actions": {
        "BootNotification": {
            "requests": 10, "failures": 1, "error_rate": 0.1, "rps": 2.0,
            "avg_ms": 900.0, "min_ms": 5.0, "max_ms": 2400.0,
            "p50_ms": 800.0, "p75_ms": 1200.0, "p90_ms": 2100.0, "p95_ms": 2300.0,
            "p99_ms": 2400.0,
        },
    },
    "total": {
        "requests": 200, "failures": 1, "error_rate": 0.005, "rps": 40.0,
        "avg_ms": 50.0, "min_ms": 1.0, "max_ms": 2400.0,
        "p50_ms": 20.0, "p75_ms": 30.0, "p90_ms": 60.0, "p95_ms": 90.0, "p99_ms": 900.0,
    },
    "errors_by_code": {"CALLERROR InternalError": 1},
    "fleet": {
        "stations_connected": 9,
        "transaction_messages_dropped": {"MeterValues": 2},
        "timeouts": 0,
    },
    "ledger": {"summary": {}, "problems": []},
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "measured", "passed", "shown"),
    [
        ("BootNotification.p95 < 2s", 2300.0, False, "2.3s"),
        ("BootNotification.p95 < 2500ms", 2300.0, True, "2300ms"),
        ("BootNotification.error_rate < 5%", 0.1, False, "10%"),
        ("BootNotification.rps >= 2", 2.0, True, "2.0/s"),
        ("error_rate < 1%", 0.005, True, "0.5%"),
        ("p99 <= 900ms", 900.0, True, "900ms"),
        ("max < 1s", 2400.0, False, "2.4s"),
        # Fleet counters: a dict by action sums up.
        ("lost_transaction_messages == 0", 2.0, False, "2"),
        # No "callerrors" in the fleet totals: Locust's failures by code count instead.
        ("callerrors == 0", 1.0, False, "1"),
        ("callerrors.InternalError <= 1", 1.0, True, "1"),
        ("callerrors.SecurityError == 0", 0.0, True, "0"),
        ("timeouts == 0", 0.0, True, "0"),
        ("stations_connected >= 10", 9.0, False, "9"),
        ("connected_ratio >= 90%", 0.9, True, "90%"),
        ("ledger_problems == 0", 0.0, True, "0"),
        # An action that never happened: counts are 0, percentiles have no data (broken).
        ("Heartbeat.requests == 0", 0.0, True, "0"),
        ("Heartbeat.error_rate < 1%", 0.0, True, "0%"),
        ("Heartbeat.p95 < 1s", None, False, "no data"),
    ],
)
def test_evaluates(text: str, measured: float | None, passed: bool, shown: str) -> None:
    result = evaluate(parse(text), SUMMARY)
    assert result.measured == (None if measured is None else pytest.approx(measured))
    assert result.passed is passed
    assert result.measured_text == shown
    assert shown in result.message


def test_ledger_problems_without_a_ledger_is_no_data() -> None:
    result = evaluate(parse("ledger_problems == 0"), {**SUMMARY, "ledger": None})
    assert result.measured is None and not result.passed


def test_fleet_callerrors_by_code_win_over_locust_failures() -> None:
    summary = {**SUMMARY, "fleet": {"callerrors": {"InternalError": 4, "NotSupported": 1}}}
    assert evaluate(parse("callerrors == 5"), summary).passed
    assert evaluate(parse("callerrors.InternalError == 4"), summary).passed


def test_table_marks_the_broken_ones() -> None:
    results = [evaluate(parse(t), SUMMARY) for t in ("error_rate < 1%", "max < 1s")]
    lines = table(results).splitlines()
    assert lines[1].endswith("pass") and "0.5%" in lines[1]
    assert lines[2].endswith("FAIL") and "2.4s" in lines[2]
