"""Id tags: each station its own by default, shared pools on request, the exported list
is what a run badges with, and a CSMS allowing one transaction per tag sees no
ConcurrentTx from a per-station fleet (issue 17, item 3).

The runs are real: a Fleet of stations with the profile's behaviour against the reference
CSMS in its ``one_transaction_per_tag`` mode, on one loop, sessions of a few seconds.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from fleet.cli import cli
from fleet.cli.prerun import tag_options
from fleet.csms.ledger import JournaledLedger
from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station
from fleet.scenarios import behaviour
from fleet.scenarios.profile import Profile, load, station_id

FAST = """\
name: {name}
behaviour: sessions
station:
  config: {{MeterValueSampleInterval: 5, MinimumStatusDuration: 0}}
{tags}
sessions:
  first_after: [0.05, 0.3]
  badge_after_plug: [0.05, 0.1]
  duration: [1.5, 2.5]
  unplug_after_stop: [0.05, 0.1]
  idle_between: [0.05, 0.2]
  stop_by_badge: 1
"""


def fast_profile(tmp_path: Path, tags: str, name: str = "fast-tags") -> Profile:
    path = tmp_path / f"{name}.yaml"
    path.write_text(FAST.format(name=name, tags=tags))
    return load(str(path))


def export(profile: Profile, stations: int, prefix: str = "CP") -> list[dict[str, str]]:
    """``fleet profiles tags`` as a user runs it, parsed."""
    result = CliRunner().invoke(
        cli,
        ["profiles", "tags", str(profile.path), "-u", str(stations), "--station-prefix", prefix],
    )
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


async def drive(profile: Profile, stations: int, seconds: float, url: str) -> None:
    """Stations CP00001.. run the profile's sessions against ``url`` for ``seconds``."""
    fleet = Fleet(asyncio.get_running_loop(), seed=17)
    for n in range(1, stations + 1):
        station = Station(station_id("CP", n), fleet.now(), config=ConfigStore(profile.config))
        fleet.add(station, url, behaviour.factory(profile, number=n))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    fleet.stop_all()


def run_fleet(
    profile: Profile, stations: int, seconds: float, **csms_options: object
) -> ReferenceCsms:
    """The stations against a reference CSMS that accepts the run's tags as `fleet run`
    sets it up; returns the CSMS (stopped)."""

    async def scenario() -> ReferenceCsms:
        csms = ReferenceCsms(**tag_options(profile, "CP", stations), **csms_options)  # type: ignore[arg-type]
        await csms.start()
        await drive(profile, stations, seconds, csms.url)
        await csms.stop()
        return csms

    return asyncio.run(scenario())


def started(csms: ReferenceCsms) -> list[tuple[str, str, str]]:
    """(station, idTag, status) of every StartTransaction the CSMS answered."""
    return [
        (sid, tx.id_tag, tx.status)
        for sid, record in csms.ledger.snapshot().items()
        for tx in record.transactions.values()
    ]


def test_every_station_has_its_own_tags_by_default() -> None:
    for name in ("demo", "public-ac", "soak", "fault-storm", "offline-wave"):
        tags = load(name).id_tags
        assert not tags.shared, name
        listing = tags.listing(station_id("CP", n) for n in range(1, 2001))
        owners: dict[str, str] = {}
        for sid, tag, _ in listing:
            assert 1 <= len(tag) <= 20
            assert owners.setdefault(tag.casefold(), sid) == sid, f"{name}: {tag} shared"
            assert tags.accepts(tag, "CP", 2000)
        assert not tags.accepts(tags.for_station(station_id("CP", 2001))[0], "CP", 2000)
    assert load("demo").id_tags.for_station("CP00042") == ("CP00042-T1",)


def test_long_station_ids_keep_distinct_tags_of_twenty_characters() -> None:
    tags = load("demo").id_tags
    prefix = "SITE-NORTH-DEPOT"  # 16 characters: ids of 21
    listing = tags.listing(station_id(prefix, n) for n in range(1, 1001))
    assert len({tag for _, tag, _ in listing}) == 1000
    assert all(len(tag) == 20 for _, tag, _ in listing)
    assert all(tags.accepts(tag, prefix) for _, tag, _ in listing)
    assert not tags.accepts("CP00001-T1", prefix)


def test_shared_pool_is_an_explicit_choice(tmp_path: Path) -> None:
    for form in ("id_tags: {shared: [POOL1, POOL2]}", "id_tags: [POOL1, POOL2]"):
        tags = fast_profile(tmp_path, form).id_tags
        assert tags.for_station("CP00001") == tags.for_station("CP00002") == ("POOL1", "POOL2")
        assert tags.accepts("pool2", "CP") and not tags.accepts("CP00001-T1", "CP")
    pool = fast_profile(tmp_path, "id_tags: {shared: {prefix: P, count: 3}, parent: GROUP}")
    assert [row["id_tag"] for row in export(pool, 5)] == ["P0001", "P0002", "P0003"]
    assert {(row["station_id"], row["parent_id_tag"]) for row in export(pool, 5)} == {("", "GROUP")}


def test_export_lists_exactly_the_tags_a_run_badges_with(tmp_path: Path) -> None:
    profile = fast_profile(tmp_path, "id_tags: {per_station: 2, parent: FLEET}")
    rows = export(profile, 6)
    assert len(rows) == 12
    assert rows[0] == {"station_id": "CP00001", "id_tag": "CP00001-T1", "parent_id_tag": "FLEET"}
    exported = {(row["station_id"], row["id_tag"]) for row in rows}
    csms = run_fleet(profile, 6, 6.0, one_transaction_per_tag=True)
    used = {(sid, tag) for sid, tag, _ in started(csms)}
    assert len(used) >= 6
    assert used <= exported
    # The embedded CSMS accepts exactly the exported tags, nothing else.
    tags = profile.id_tags
    assert all(tags.accepts(tag, "CP", 6) for _, tag in exported)
    assert not tags.accepts("CP00007-T1", "CP", 6) and not tags.accepts("CP00001-T3", "CP", 6)


def test_per_station_tags_meet_no_concurrent_tx_where_a_shared_pool_does(
    tmp_path: Path,
) -> None:
    own = run_fleet(
        fast_profile(tmp_path, "id_tags: per-station"), 8, 6.0, one_transaction_per_tag=True
    )
    statuses = [status for _, _, status in started(own)]
    assert len(statuses) >= 8
    assert set(statuses) == {"Accepted"}
    assert own.ledger.summary()["transactions_concurrent_tx"] == 0
    assert own.ledger.check() == []

    shared = fast_profile(tmp_path, "id_tags: {shared: [ONLY1, ONLY2]}", name="shared")
    pool = run_fleet(shared, 8, 6.0, one_transaction_per_tag=True)
    assert pool.ledger.summary()["transactions_concurrent_tx"] > 0
    assert {status for _, _, status in started(pool)} == {"Accepted", "ConcurrentTx"}


def test_fleet_csms_takes_a_runs_tags_and_refuses_a_second_transaction_per_tag(
    tmp_path: Path, free_port: int
) -> None:
    """`fleet csms --profile P --stations N --one-transaction-per-tag`, as a user starts
    it for a fleet on another host; its ledger read back from its journal."""
    profile = fast_profile(tmp_path, "id_tags: {shared: [ONE]}", name="one-tag")
    journal = tmp_path / "ledger.jsonl"
    cmd = [sys.executable, "-m", "fleet", "csms", "--port", str(free_port)]
    cmd += ["--profile", str(profile.path), "--stations", "3", "--one-transaction-per-tag"]
    cmd += ["--ledger-journal", str(journal)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        asyncio.run(drive(profile, 3, 5.0, f"ws://127.0.0.1:{free_port}/ocpp"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    txs = [
        (tx.id_tag, tx.status)
        for record in JournaledLedger.read(str(journal)).snapshot().values()
        for tx in record.transactions.values()
    ]
    assert ("ONE", "Accepted") in txs and ("ONE", "ConcurrentTx") in txs, txs

    own = fast_profile(tmp_path, "id_tags: per-station", name="own")
    accepts = tag_options(own, "CP", 3)["accepts_tag"]
    assert [accepts(f"CP0000{n}-T1") for n in (1, 3, 4)] == [True, True, False]
