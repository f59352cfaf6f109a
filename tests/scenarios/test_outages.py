"""Profile sections for issue 12's scenarios: ``power.outages`` (grid outages over a
share of the fleet) and ``faults.enable`` (the detections the guide ships disabled),
validated with one-line errors naming the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import assert_profile_error

from fleet.model.faults import lookup
from fleet.scenarios.power import Outage, PowerPlan
from fleet.scenarios.profile import Profile, load


def _load(tmp_path: Path, body: str) -> Profile:
    path = tmp_path / "p.yaml"
    path.write_text(body)
    return load(str(path))


def test_a_good_power_section(tmp_path: Path) -> None:
    body = (
        "power:\n"
        "  outages:\n"
        "    - {at: 300, duration: 120, share: 0.4}\n"
        "    - {at: 900, duration: [5, 20]}\n"
    )
    plan = _load(tmp_path, body).power
    assert plan == PowerPlan((Outage(300.0, (120.0, 120.0), 0.4), Outage(900.0, (5.0, 20.0), 1.0)))


def test_no_power_section_means_no_outages(tmp_path: Path) -> None:
    assert _load(tmp_path, "name: x\n").power is None


def test_the_blackout_profile_is_valid() -> None:
    plan = load("blackout").power
    assert isinstance(plan, PowerPlan) and plan.outages


OUTAGE = "power:\n  outages:\n    - "


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("power:\n  outages: []\n", 2, "power.outages", "expected a list of outages"),
        ("power:\n  cuts: []\n", 2, "power.cuts", "unknown field"),
        (OUTAGE + "{at: 5}\n", 3, "power.outages.0", "missing field 'duration'"),
        (OUTAGE + "{duration: 0}\n", 3, "power.outages.0.duration", "must be > 0"),
        (OUTAGE + "{duration: [9, 3]}\n", 3, "power.outages.0.duration", "above max"),
        (OUTAGE + "{duration: 5, share: 0}\n", 3, "power.outages.0.share", "must be > 0"),
        (OUTAGE + "{duration: 5, share: 2}\n", 3, "power.outages.0.share", "must be 0..1"),
        (OUTAGE + "{duration: 5, at: -1}\n", 3, "power.outages.0.at", "must be >= 0"),
        (OUTAGE + "{duration: 5, region: north}\n", 3, "power.outages.0.region", "unknown"),
        (OUTAGE + "60\n", 3, "power.outages.0", "expected a mapping"),
    ],
)
def test_bad_outages_name_the_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    assert_profile_error(tmp_path, body, line, field, needle)


# -- faults.enable ------------------------------------------------------------------------


def test_a_disabled_detection_raised_by_a_storm_must_be_enabled(tmp_path: Path) -> None:
    """Guide, Vendor Error Codes: GroundFailure "is disabled by default"."""
    body = "faults:\n  storms:\n    - {duration: 5, rate: 1, codes: [GroundFailure]}\n"
    assert_profile_error(
        tmp_path, body, 3, "faults.storms.0.codes.0", "disabled by default.*faults.enable"
    )
    enabled = "faults:\n  enable: [0x100206]\n" + body[len("faults:\n") :]
    plan = _load(tmp_path, enabled).faults
    assert plan.enabled == {"0x100206"}
    assert plan.storms[0].codes == (lookup("0x100206"),)


def test_enable_alone_is_a_valid_faults_section(tmp_path: Path) -> None:
    plan = _load(tmp_path, "faults:\n  enable: [WeakSignal, Front cover opened]\n").faults
    assert plan.storms == () and plan.enabled == {"0x100008", "0x10020C"}


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("faults:\n  enable: GroundFailure\n", 2, "faults.enable", "expected a list"),
        ("faults:\n  enable: [0x100101]\n", 2, "faults.enable.0", "enabled by default"),
        ("faults:\n  enable: [nope]\n", 2, "faults.enable.0", "unknown vendor error"),
        ("faults:\n  enable: [true]\n", 2, "faults.enable.0", "expected a vendor error code"),
        (
            "faults:\n  storms:\n    - {duration: 5, rate: 1, codes: [0x100101], "
            "repair_after: 60}\n",
            3,
            "faults.storms.0.repair_after",
            "only for faults that stay until repaired",
        ),
        (
            "faults:\n  storms:\n    - {duration: 5, rate: 1, codes: [0x300006], "
            "repair_after: 0}\n",
            3,
            "faults.storms.0.repair_after",
            "must be > 0",
        ),
    ],
)
def test_bad_fault_enables_name_the_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    assert_profile_error(tmp_path, body, line, field, needle)


def test_repair_after_is_read(tmp_path: Path) -> None:
    body = (
        "faults:\n  storms:\n"
        "    - {duration: 5, rate: 1, codes: [0x300006], repair_after: [60, 120]}\n"
    )
    (storm,) = _load(tmp_path, body).faults.storms
    assert storm.repair_after == (60.0, 120.0)
