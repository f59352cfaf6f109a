"""Fault storms (fleet.scenarios.storms): profile validation, and storms on the real
engine against the reference CSMS, whose ledger shows what reached it.

Every wait is bounded; the storms last about a second.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from support import assert_profile_error
from test_link import FAST, run, until

from fleet.csms.ledger import StatusEntry
from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.metrics.exporter import FleetCollector
from fleet.model.config import ConfigStore
from fleet.model.faults import BY_VENDOR_CODE, lookup
from fleet.model.station import Station
from fleet.scenarios import storms
from fleet.scenarios.profile import load
from fleet.scenarios.storms import FaultPlan, Storm

# -- profile validation -------------------------------------------------------------------

GOOD = """\
name: s
faults:
  storms:
    - {at: 30, duration: 60, share: 0.2, codes: [0x30000B], correlated: true}
    - {at: 10, duration: [20, 90], rate: 0.5, codes: [0x100101, "0x200206"], share: 1.0}
    - at: 5
      duration: 1
      rate: 2
      window: 30
      connector: 1
      codes: [Badge reader issue]
"""


def _load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "p.yaml"
    path.write_text(body)
    return load(str(path))


def test_a_good_storm_section(tmp_path: Path) -> None:
    profile = _load(tmp_path, GOOD)
    plan = profile.faults  # type: ignore[attr-defined]
    assert isinstance(plan, FaultPlan)
    dem, mix, reader = plan.storms
    assert dem == Storm(30.0, (60.0, 60.0), 0.2, (lookup("0x30000B"),), correlated=True)
    assert [e.vendor_code for e in mix.codes] == ["0x100101", "0x200206"]
    assert (mix.rate, mix.window, mix.duration, mix.correlated) == (0.5, None, (20, 90), False)
    assert (reader.codes, reader.connector, reader.window) == ((lookup("0x100004"),), 1, 30.0)


def test_the_shipped_profile_is_valid() -> None:
    plan = load("fault-storm").faults
    assert isinstance(plan, FaultPlan)
    assert [s.correlated for s in plan.storms] == [True, False]
    assert plan.storms[0].codes == (lookup("0x30000B"),)


STORM = "faults:\n  storms:\n    - "


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("faults:\n  storms: []\n", 2, "faults.storms", "expected a list of storms"),
        ("faults:\n  bursts: []\n", 2, "faults.bursts", "unknown field"),
        (
            STORM + "{duration: 5, rate: 1, codes: [0x123456]}\n",
            3,
            "faults.storms.0.codes.0",
            "unknown vendor error '0x123456'",
        ),
        (
            STORM + "{duration: 5, rate: 1, codes: [0x0]}\n",
            3,
            "faults.storms.0.codes.0",
            "0x0 \\(NoError\\) is not an error",
        ),
        (
            STORM + "{duration: 5, rate: 1, codes: [Issue with ISO15118 module]}\n",
            3,
            "faults.storms.0.codes.0",
            "ambiguous",
        ),
        (STORM + "{duration: 5, rate: 1, codes: []}\n", 3, "faults.storms.0.codes", "expected"),
        (
            STORM + "{rate: 1, codes: [0x30000B]}\n",
            3,
            "faults.storms.0",
            "missing field 'duration'",
        ),
        (
            STORM + "{duration: 5, codes: [0x30000B]}\n",
            3,
            "faults.storms.0",
            "missing field 'rate'",
        ),
        (
            STORM + "{duration: 5, rate: 0, codes: [0x30000B]}\n",
            3,
            "faults.storms.0.rate",
            "must be > 0",
        ),
        (
            STORM + "{duration: 5, share: 1.5, rate: 1, codes: [0x30000B]}\n",
            3,
            "faults.storms.0.share",
            "must be 0..1",
        ),
        (
            STORM + "{duration: 0, rate: 1, codes: [0x30000B]}\n",
            3,
            "faults.storms.0.duration",
            "must be > 0",
        ),
        (
            STORM + "{duration: 5, correlated: true, rate: 1, codes: [0x30000B]}\n",
            3,
            "faults.storms.0.rate",
            "only for independent storms",
        ),
        (
            STORM + "{duration: 5, rate: 1, connector: 2, codes: [0x30000B]}\n",
            3,
            "faults.storms.0.connector",
            "must be 0 or 1",
        ),
        (
            STORM + "{duration: 5, rate: 1, codes: [0x30000B]}\n    - {duration: 5, when: 1}\n",
            4,
            "faults.storms.1.when",
            "unknown field",
        ),
        (
            STORM + "{duration: 5, rate: 1, correlated: yes please, codes: [0x30000B]}\n",
            3,
            "faults.storms.0.correlated",
            "expected true or false",
        ),
    ],
)
def test_bad_storms_name_the_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    assert_profile_error(tmp_path, body, line, field, needle)


# -- storms on the engine -----------------------------------------------------------------

TAGS = ["T1", "T2", "T3"]


def _errors(entries: list[StatusEntry]) -> list[StatusEntry]:
    return [s for s in entries if s.error_code != "NoError"]


def test_a_correlated_storm_reaches_the_csms_and_the_stations_recover() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accepted_tags=TAGS)
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=3)
        ids = [f"CP{i}" for i in range(6)]
        links = [
            fleet.add(Station(sid, fleet.now(), config=ConfigStore(FAST)), csms.url) for sid in ids
        ]
        await until(
            lambda: all(link.station.boot_status == "Accepted" for link in links), what="boots"
        )
        for link, tag in zip(links[:3], TAGS, strict=False):  # three stations charge
            link.hardware(link.station.plug_in)
            link.hardware(lambda now, s=link.station, t=tag: s.present_tag(t, now))
        ledger = csms.ledger
        await until(lambda: ledger.summary()["transactions_started"] == 3, what="charging")

        dem = lookup("0x30000B")  # reported, status unchanged, on connector 0
        cp = lookup("0x100217")  # faults connector 1, stops the transaction (Other)
        plan = FaultPlan(
            (
                Storm(0.1, (1.0, 1.0), 0.5, (dem,), correlated=True),
                Storm(0.3, (0.8, 0.8), 0.34, (cp,), correlated=True),
            )
        )
        director = storms.start(fleet, plan, random.Random(11))
        assert director is not None
        await until(
            lambda: (
                fleet.stats.faults_raised["0x30000B"] == 3
                and fleet.stats.faults_raised["0x100217"] == 2
            ),
            what="storms raised",
        )
        await until(
            lambda: not director.handles and fleet.stats.faults_active["0x100217"] == 0,
            5,
            "storms over",
        )
        assert dict(fleet.stats.faults_active) == {"0x30000B": 0, "0x100217": 0}

        def recovered() -> bool:
            for sid in ids:
                last = ledger.station(sid).last_status
                if any(e.error_code != "NoError" or e.status == "Faulted" for e in last.values()):
                    return False
            return True

        await until(recovered, 5, "recovery StatusNotifications")

        hit: dict[str, set[str]] = {}
        for sid in ids:
            entries = ledger.station(sid).statuses
            for e in _errors(entries):
                row = BY_VENDOR_CODE[e.vendor_error_code or ""]
                # What reached the CSMS is the catalogue's row, on its connector, with
                # Faulted exactly for the faulting codes.
                assert (e.error_code, e.info) == (row.ocpp_code, row.info), e
                assert e.connector_id == row.behaviour.connector, e
                assert (e.status == "Faulted") == row.faults, e
                hit.setdefault(row.vendor_code, set()).add(sid)
                # ...and a NoError report on that connector follows it.
                later = entries[entries.index(e) + 1 :]
                assert any(
                    x.connector_id == e.connector_id and x.error_code == "NoError" for x in later
                ), (sid, e)
        assert len(hit["0x30000B"]) == 3 and len(hit["0x100217"]) == 2

        charging = set(ids[:3])
        for sid in hit["0x30000B"]:
            statuses = ledger.station(sid).statuses
            (report,) = [e for e in statuses if e.vendor_error_code == "0x30000B"]
            # The DEM loss changed nothing: same status before and after, charging goes on.
            assert report.status == "Available"
        # The CP error stopped the transactions it hit with the catalogue's reason; the
        # DEM loss stopped none.
        stopped = {
            sid: [t.stop_reason for t in ledger.station(sid).transactions.values() if t.stopped]
            for sid in ids
        }
        for sid in ids:
            if sid in charging and sid in hit["0x100217"]:
                assert stopped[sid] == [cp.behaviour.stop_reason], sid
            else:
                assert stopped[sid] == [], sid
        for sid in charging - hit["0x100217"]:
            assert ledger.station(sid).last_status[1].status == "Charging", sid
        for sid in set(ids) - charging:
            assert ledger.station(sid).last_status[1].status == "Available", sid

        names = {m.name: m for m in FleetCollector(fleet.stats).collect()}
        raised = {s.labels["code"]: s.value for s in names["fleet_faults_raised"].samples}
        assert raised == {"0x30000B": 3, "0x100217": 2}
        assert {s.value for s in names["fleet_faults_active"].samples} == {0}

        fleet.stop_all()
        await until(lambda: fleet.stats.stations_connected == 0, what="clean stop")
        await csms.stop()

    run(scenario)


def test_an_independent_storm_spreads_faults_at_its_rate() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms()
        await csms.start()
        fleet = Fleet(asyncio.get_running_loop(), seed=5)
        ids = [f"IN{i}" for i in range(4)]
        for sid in ids:
            fleet.add(Station(sid, fleet.now(), config=ConfigStore(FAST)), csms.url)
        await until(lambda: fleet.stats.boot_status["Accepted"] == 4, what="boots")
        mix = (lookup("0x100101"), lookup("0x100004"))  # Faulted on 0; reported on 0
        plan = FaultPlan((Storm(0.0, (0.2, 0.4), 1.0, mix, rate=20.0, window=0.6),))
        director = storms.start(fleet, plan, random.Random(2))
        assert director is not None
        await until(lambda: not director.handles, 5, "storm over")
        raised = sum(fleet.stats.faults_raised.values())
        assert raised >= 2
        assert set(fleet.stats.faults_raised) <= {"0x100101", "0x100004"}
        assert all(n == 0 for n in fleet.stats.faults_active.values())
        ledger = csms.ledger

        def all_clear() -> bool:
            return all(
                e.error_code == "NoError" and e.status == "Available"
                for sid in ids
                for e in ledger.station(sid).last_status.values()
            )

        await until(all_clear, 5, "recovery")
        reports = [e for sid in ids for e in _errors(ledger.station(sid).statuses)]
        # Every raise reached the CSMS (none overlapped: a busy connector is skipped).
        assert len(reports) == raised
        for e in reports:
            row = BY_VENDOR_CODE[e.vendor_error_code or ""]
            assert (e.error_code, e.connector_id) == (row.ocpp_code, 0)
            assert e.status == ("Faulted" if row.faults else "Available")
        fleet.stop_all()
        await until(lambda: fleet.stats.stations_connected == 0, what="clean stop")
        await csms.stop()

    run(scenario)


def test_the_fault_rate_override_replaces_the_profile_rate() -> None:
    class FakeFleet:
        overrides: dict[str, float | None] = {"fault_rate": None}

    storm = Storm(0.0, (1.0, 1.0), 1.0, (lookup("0x100004"),), rate=0.5)
    director = storms.StormDirector(FakeFleet(), FaultPlan((storm,)), random.Random(1))
    pool = [f"CP{i}" for i in range(360)]
    assert director.rate(storm, pool) == 0.5
    FakeFleet.overrides["fault_rate"] = 2.0  # per station per hour
    assert director.rate(storm, pool) == pytest.approx(0.2)
