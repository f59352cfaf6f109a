"""Profiles describe the device too: firmware, reboot time, smart-charging strictness."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.scenarios.profile import ProfileError, load


def test_device_fields(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(
        "station:\n"
        "  firmware: 3.1.0\n"
        "  reboot_seconds: 2.5\n"
        "  reject_number_phases: false\n"
        "  config:\n"
        "    ChargingScheduleAllowedChargingRateUnit: Current,Power\n"
    )
    p = load(str(path))
    assert (p.firmware, p.reboot_seconds, p.reject_number_phases) == ("3.1.0", 2.5, False)
    assert p.config["ChargingScheduleAllowedChargingRateUnit"] == "Current,Power"


def test_defaults_are_the_documented_device() -> None:
    p = load("demo")
    assert (p.firmware, p.reboot_seconds, p.reject_number_phases) == ("3.0.0", 10.0, False)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("station:\n  reboot_seconds: -1\n", "station.reboot_seconds"),
        ("station:\n  reject_number_phases: maybe\n", "station.reject_number_phases"),
        ("station:\n  firmware: ''\n", "station.firmware"),
    ],
)
def test_bad_device_fields(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ProfileError, match=needle) as info:
        load(str(path))
    assert f"{path}:2" in str(info.value)
