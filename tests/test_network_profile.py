"""The profile's ``network:`` section (queue limit, offline waves), validated on load."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleet.model.outbox import DEFAULT_QUEUE_LIMIT
from fleet.model.station import Station
from fleet.scenarios import network
from fleet.scenarios.profile import ProfileError, load


def test_the_offline_wave_profile() -> None:
    plan = load("offline-wave").network
    assert plan == network.NetworkPlan(
        queue_limit=10000,
        waves=(
            network.Wave(at=60, duration=120, share=0.3, mode="drop", charging_only=True),
            network.Wave(at=300, duration=60, share=0.2, mode="refuse", charging_only=True),
        ),
    )
    station = Station("CP1", 0.0)
    assert station.queue_limit == DEFAULT_QUEUE_LIMIT
    network.configure(station, network.NetworkPlan(queue_limit=7))
    assert station.queue_limit == 7


@pytest.mark.parametrize(
    ("body", "where", "line"),
    [
        ("network:\n  queue_limit: 0\n", "network.queue_limit", 2),
        ("network:\n  queue_limit: 1.5\n", "network.queue_limit", 2),
        ("network:\n  bogus: 1\n", "network.bogus", 2),
        ("network:\n  offline_waves: {}\n", "network.offline_waves", 2),
        (
            "network:\n  offline_waves:\n    - {at: 1, duration: 2}\n",
            "network.offline_waves.0: missing field 'share'",
            3,
        ),
        (
            "network:\n  offline_waves:\n    - {at: 1, duration: 2, share: 1.5}\n",
            "network.offline_waves.0.share",
            3,
        ),
        (
            "network:\n  offline_waves:\n    - {at: 1, duration: 0, share: 0.5}\n",
            "network.offline_waves.0.duration",
            3,
        ),
        (
            "network:\n  offline_waves:\n    - at: 1\n      duration: 2\n"
            "      share: 0.5\n      mode: flaky\n",
            "network.offline_waves.0.mode",
            6,
        ),
    ],
)
def test_bad_network_sections(tmp_path: Path, body: str, where: str, line: int) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ProfileError, match=where) as info:
        load(str(path))
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_a_wave_picks_a_seeded_share_of_the_charging_stations() -> None:
    def link(i: int, charging: bool) -> SimpleNamespace:
        return SimpleNamespace(station=SimpleNamespace(transaction=object() if charging else None))

    links = {f"CP{i:02d}": link(i, i % 2 == 0) for i in range(20)}
    fleet = SimpleNamespace(links=links)
    wave = network.Wave(at=0, duration=1, share=0.3, charging_only=True)
    first = network.pick(fleet, wave, random.Random(1))
    assert len(first) == 3 and all(lk.station.transaction is not None for lk in first)
    assert network.pick(fleet, wave, random.Random(1)) == first  # reproducible
    everyone = network.Wave(at=0, duration=1, share=0.5)
    assert len(network.pick(fleet, everyone, random.Random(1))) == 10


def test_the_offline_share_override_replaces_every_wave_share() -> None:
    cut: list[tuple[float, str]] = []
    links = {
        f"CP{i}": SimpleNamespace(
            station=SimpleNamespace(transaction=None),
            cut=lambda seconds, mode: cut.append((seconds, mode)),
        )
        for i in range(10)
    }
    fleet = SimpleNamespace(links=links, overrides={"offline_share": 0.2}, real=lambda s: s / 2)
    network.fire(fleet, network.Wave(at=0, duration=8, share=0.9, mode="tls"), random.Random(3))
    assert cut == [(4.0, "tls"), (4.0, "tls")]
