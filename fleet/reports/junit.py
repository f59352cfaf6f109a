"""JUnit XML for CI: one test case per SLO, so GitHub, GitLab, Jenkins... list them.

A broken SLO is a ``<failure>`` whose message carries the measured value; the run's
per-action numbers go into ``<system-out>`` of the suite, so they are one click away
in the CI's test view.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fleet.reports.slo import SloResult

SUITE = "fleet SLOs"
CLASSNAME = "fleet.slo"


def render(
    results: Sequence[SloResult],
    summary: Mapping[str, Any] | None = None,
    suite: str = SUITE,
) -> str:
    """The XML document (a ``<testsuites>`` with one ``<testsuite>``). What failed the
    run besides its SLOs (``failed_because``: stations that never connected, an SLO that
    stopped it early) is a failed test case too, so a CI's test view is never green for
    a run that did not reach the CSMS."""
    verdicts = list((summary or {}).get("failed_because") or ())
    tests = len(results) + len(verdicts)
    failures = sum(1 for r in results if not r.passed) + len(verdicts)
    seconds = float((summary or {}).get("wall_s") or 0.0)
    root = ET.Element(
        "testsuites", name=suite, tests=str(tests), failures=str(failures), errors="0"
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(tests),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
    )
    if summary is not None:
        props = ET.SubElement(ts, "properties")
        for key in ("wall_s", "stations_target"):
            if summary.get(key) is not None:
                ET.SubElement(props, "property", name=key, value=str(summary[key]))
    for r in results:
        case = ET.SubElement(ts, "testcase", classname=CLASSNAME, name=r.slo.text, time="0")
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.message, type="SLO")
            failure.text = (
                f"{r.slo.text}\nmeasured: {r.measured_text}\n"
                f"required: {r.slo.metric} {r.slo.op} {r.slo.threshold_text}\n"
            )
        else:
            ET.SubElement(case, "system-out").text = r.message
    for reason in verdicts:
        case = ET.SubElement(ts, "testcase", classname="fleet.run", name="run verdict", time="0")
        ET.SubElement(case, "failure", message=reason, type="run").text = reason + "\n"
    if summary is not None:
        ET.SubElement(ts, "system-out").text = _numbers(summary)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(
    path: str | Path, results: Sequence[SloResult], summary: Mapping[str, Any] | None
) -> None:
    Path(path).write_text(render(results, summary), encoding="utf-8")


def _numbers(summary: Mapping[str, Any]) -> str:
    lines = [
        f"{'action':<32} {'requests':>9} {'failures':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    ]
    rows = dict(summary.get("actions") or {})
    rows["Aggregated"] = summary.get("total") or {}
    for name, row in rows.items():
        lines.append(
            f"{name:<32} {row.get('requests', 0):>9} {row.get('failures', 0):>9} "
            f"{_ms(row.get('p50_ms')):>8} {_ms(row.get('p95_ms')):>8} {_ms(row.get('p99_ms')):>8}"
        )
    for code, n in (summary.get("errors_by_code") or {}).items():
        lines.append(f"error {code}: {n}")
    return "\n".join(lines) + "\n"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}"
