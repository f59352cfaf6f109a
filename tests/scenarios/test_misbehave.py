"""Misbehaving stations (fleet.scenarios.misbehave): the profile section, the frames
(invalid per the official schemas, each of its kind), misbehaviour on the real engine
against the reference CSMS (the ``ocpp`` library's answers classified, the stations'
normal traffic untouched, the CSMS still serving), a CSMS that hangs up, and a headless
``fleet run`` printing the table.

Every wait is bounded; the engine tests take a few seconds each.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import HANG_GUARD, assert_profile_error, until
from websockets.asyncio.server import ServerConnection, serve

from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.metrics.exporter import FleetCollector
from fleet.model.config import ConfigStore
from fleet.model.station import CSMS_ACTIONS, Station
from fleet.protocol import errors, schemas
from fleet.protocol.errors import OcppError
from fleet.scenarios import misbehave
from fleet.scenarios.misbehave import (
    KINDS,
    PREFIX,
    VARIANTS,
    Context,
    MisbehaveDirector,
    MisbehavePlan,
    Outcome,
    build,
)
from fleet.scenarios.profile import load

FAST = {"MinimumStatusDuration": 0, "MeterValueSampleInterval": 1, "WebSocketPingInterval": 0}


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro(), HANG_GUARD))


# -- the profile section ---------------------------------------------------------------------


def _load(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "p.yaml"
    path.write_text(body)
    return load(str(path))


def test_a_full_section_and_the_defaults(tmp_path: Path) -> None:
    plan = _load(
        tmp_path,
        "misbehave:\n  share: 0.1\n  rate_per_hour: 120\n"
        "  kinds: {schema: 2, flood: 1, order: 0}\n  flood_burst: 30\n  timeout: 4\n",
    ).misbehave
    assert plan == MisbehavePlan(0.1, 120.0, (("schema", 2.0), ("flood", 1.0)), 30, 4.0)
    plan = _load(tmp_path, "misbehave: {share: 1, rate_per_hour: 5}\n").misbehave
    assert plan.kinds == tuple((k, 1.0) for k in KINDS)
    assert (plan.flood_burst, plan.timeout) == (20, 10.0)
    plan = _load(tmp_path, "misbehave: {share: 1, rate_per_hour: 5, kinds: [types]}\n").misbehave
    assert plan.kinds == (("types", 1.0),)
    assert _load(tmp_path, "name: x\n").misbehave is None


def test_the_shipped_profile_is_valid() -> None:
    profile = load("misbehaving")
    plan = profile.misbehave
    assert isinstance(plan, MisbehavePlan)
    assert {k for k, _ in plan.kinds} == set(KINDS)


M = "misbehave:\n"


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("misbehave: 3\n", 1, "misbehave", "expected a mapping"),
        (M + "  share: 0.1\n", 1, "misbehave", "missing field 'rate_per_hour'"),
        (M + "  rate_per_hour: 1\n", 1, "misbehave", "missing field 'share'"),
        (M + "  share: 0\n  rate_per_hour: 1\n", 2, "misbehave.share", "must be > 0"),
        (M + "  share: 1.5\n  rate_per_hour: 1\n", 2, "misbehave.share", "must be 0..1"),
        (M + "  share: half\n  rate_per_hour: 1\n", 2, "misbehave.share", "expected a number"),
        (M + "  share: 1\n  rate_per_hour: 0\n", 3, "misbehave.rate_per_hour", "must be > 0"),
        (M + "  share: 1\n  rate_per_hour: 1\n  rude: 1\n", 4, "misbehave.rude", "unknown field"),
        (
            M + "  share: 1\n  rate_per_hour: 1\n  kinds: {schema: 1, rude: 1}\n",
            4,
            "misbehave.kinds.rude",
            "unknown kind 'rude'",
        ),
        (
            M + "  share: 1\n  rate_per_hour: 1\n  kinds: {schema: -1}\n",
            4,
            "misbehave.kinds.schema",
            "must be >= 0",
        ),
        (
            M + "  share: 1\n  rate_per_hour: 1\n  kinds: {schema: 0}\n",
            4,
            "misbehave.kinds",
            "every weight is 0",
        ),
        (
            M + "  share: 1\n  rate_per_hour: 1\n  kinds:\n    - flood\n    - flood\n",
            6,
            "misbehave.kinds.1",
            "duplicate kind 'flood'",
        ),
        (M + "  share: 1\n  rate_per_hour: 1\n  kinds: schema\n", 4, "misbehave.kinds", "a list"),
        (
            M + "  share: 1\n  rate_per_hour: 1\n  flood_burst: 1\n",
            4,
            "misbehave.flood_burst",
            "expected an integer 2..1000",
        ),
        (
            M + "  share: 1\n  rate_per_hour: 1\n  flood_burst: 2.5\n",
            4,
            "misbehave.flood_burst",
            "expected an integer",
        ),
        (M + "  share: 1\n  rate_per_hour: 1\n  timeout: 0\n", 4, "misbehave.timeout", "> 0"),
    ],
)
def test_mistakes_name_the_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    assert_profile_error(tmp_path, body, line, field, needle)


# -- the frames --------------------------------------------------------------------------------


def _all_variants(kind: str) -> dict[str, list[Any]]:
    """Every variant of a kind at least once (seeded draws), as {variant: [probes]}."""
    rng = random.Random(1)
    counter = iter(range(1, 10_000))
    seen: dict[str, list[Any]] = {}
    ctx = Context(1_750_000_000.0, "TAG1")
    for _ in range(200):
        probes = build(kind, lambda: f"{PREFIX}{next(counter)}", rng, ctx, 5)
        seen.setdefault(probes[-1].variant, probes)
    return seen


def _call(probe: Any) -> tuple[str, str, Any]:
    kind, uid, action, payload = orjson.loads(probe.frame)
    assert kind == 2
    assert (uid, action) == (probe.unique_id, probe.action)
    return uid, action, payload


def _violation(action: str, payload: Any) -> str | None:
    try:
        schemas.validate(action, payload, response=False)
    except OcppError as exc:
        return exc.code
    return None


def test_schema_frames_break_the_official_schema_but_not_by_type() -> None:
    seen = _all_variants("schema")
    assert set(seen) == set(VARIANTS["schema"])
    for variant, (probe,) in seen.items():
        uid, action, payload = _call(probe)
        assert uid.startswith(PREFIX)
        assert schemas.known_action(action) and action not in CSMS_ACTIONS
        code = _violation(action, payload)
        assert code is not None, variant
        assert code != errors.TYPE_CONSTRAINT_VIOLATION, variant


def test_type_frames_break_the_schema_by_type() -> None:
    seen = _all_variants("types")
    assert set(seen) == set(VARIANTS["types"])
    for variant, (probe,) in seen.items():
        _, action, payload = _call(probe)
        assert _violation(action, payload) == errors.TYPE_CONSTRAINT_VIOLATION, variant


def test_order_frames_are_valid_but_out_of_order() -> None:
    seen = _all_variants("order")
    assert set(seen) == set(VARIANTS["order"])
    for variant, (probe,) in seen.items():
        _, action, payload = _call(probe)
        assert _violation(action, payload) is None, variant  # valid: only the order is wrong
        if "transactionId" in payload:
            assert payload["transactionId"] >= 2_000_000_000  # never given by a CSMS here
        else:
            (first, second) = payload["meterValue"]
            assert second["timestamp"] < first["timestamp"]
            assert float(second["sampledValue"][0]["value"]) < float(
                first["sampledValue"][0]["value"]
            )


def test_duplicates_reuse_one_id_and_floods_burst() -> None:
    seen = _all_variants("duplicate_id")
    assert set(seen) == set(VARIANTS["duplicate_id"])
    in_flight = seen["a CALL reusing the id of one in flight"]
    assert len(in_flight) == 2 and in_flight[0].unique_id == in_flight[1].unique_id
    assert [p.counted for p in in_flight] == [False, True] and in_flight[1].replies == 2
    (answered,) = seen["a CALL reusing the id of one just answered"]
    assert answered.follow_up is not None and answered.follow_up.unique_id == answered.unique_id
    for probe in [*in_flight, answered, answered.follow_up]:
        _, action, payload = _call(probe)
        assert _violation(action, payload) is None

    (flood,) = _all_variants("flood").values()
    assert len(flood) == 5 and len({p.unique_id for p in flood}) == 5
    for probe in flood:
        _, action, payload = _call(probe)
        assert (action, _violation(action, payload)) == ("Heartbeat", None)


def test_malformed_frames_are_not_ocpp_j_and_unknown_actions_are_unknown() -> None:
    seen = _all_variants("malformed")
    assert set(seen) == set(VARIANTS["malformed"])
    for variant, (probe,) in seen.items():
        try:
            frame = orjson.loads(probe.frame)
        except orjson.JSONDecodeError:
            assert variant == "truncated JSON"
            continue
        assert not isinstance(frame, list) or frame[0] not in (2, 3, 4), variant

    seen = _all_variants("unknown_action")
    assert set(seen) == set(VARIANTS["unknown_action"])
    for variant, (probe,) in seen.items():
        _, action, _payload = _call(probe)
        # Either OCPP 1.6 does not define it, or only a CSMS may send it.
        assert not schemas.known_action(action) or action in CSMS_ACTIONS, variant


# -- on the engine, against the reference CSMS -------------------------------------------------

# What the reference CSMS (the ocpp library, 2.1) answers to each variant, with its own code
# choices: ProtocolError for a missing property, OCPP 2.0.1's "FormatViolation" (not 1.6's
# FormationViolation) for an enum or an additional property, NotSupported for an action
# OCPP does not define. It does not check formats, so a timestamp that is not a date-time
# is accepted: a finding. It ignores frames it cannot parse (a timeout, which for
# a malformed frame is not a finding).
REFERENCE_ANSWERS = {
    "StatusNotification without its required errorCode": errors.PROTOCOL_ERROR,
    "StatusNotification status outside its enum": "FormatViolation",
    "Authorize idTag over its 20-character maxLength": errors.TYPE_CONSTRAINT_VIOLATION,
    "Heartbeat with an additional property": "FormatViolation",
    "MeterValues timestamp that is not a date-time": "accepted",
    "StatusNotification connectorId as a string": errors.TYPE_CONSTRAINT_VIOLATION,
    "Authorize idTag as a number": errors.TYPE_CONSTRAINT_VIOLATION,
    "MeterValues meterValue as an object": errors.TYPE_CONSTRAINT_VIOLATION,
    "Heartbeat payload as a list": errors.TYPE_CONSTRAINT_VIOLATION,
    "MeterValues for a transaction the CSMS never gave": "accepted",
    "StopTransaction before any StartTransaction": "accepted",
    "MeterValues with timestamps and register going backwards": "accepted",
    "a CALL reusing the id of one in flight": "accepted",
    "a CALL reusing the id of one just answered": "accepted",
    "3 Heartbeats without waiting for answers": "accepted",
    "truncated JSON": "timeout",
    "a JSON object instead of an OCPP-J array": "timeout",
    "unknown message type id 7": "timeout",
    "an action OCPP 1.6 does not define": errors.NOT_SUPPORTED,
    "RemoteStartTransaction (a CSMS-to-station action)": errors.NOT_IMPLEMENTED,
}


def _settled(fleet: Fleet) -> bool:
    return fleet.stats.stations_connected == len(fleet.links) and all(
        link.station.transaction_backlog == 0 for link in fleet.links.values()
    )


def test_misbehaving_stations_against_the_reference_csms() -> None:
    async def scenario() -> None:
        csms = ReferenceCsms(accept_all_tags=True)
        await csms.start()
        ledger = csms.ledger
        fleet = Fleet(asyncio.get_running_loop(), seed=4)
        links = [
            fleet.add(Station(f"MB{i}", fleet.now(), config=ConfigStore(FAST)), csms.url)
            for i in range(4)
        ]
        await until(lambda: fleet.stats.boot_status["Accepted"] == 4, 5, "boots")
        for i, link in enumerate(links):  # every station charges: normal transaction traffic
            link.hardware(link.station.plug_in)
            link.hardware(lambda now, s=link.station, i=i: s.present_tag(f"TAG{i}", now))
        await until(lambda: ledger.summary()["transactions_started"] == 4, 5, "charging")

        # A timeout well above the reference CSMS's answers even on a loaded machine (the
        # malformed frames it ignores wait it out).
        plan = MisbehavePlan(1.0, 36_000.0, tuple((k, 1.0) for k in KINDS), 3, 3.0)
        director = misbehave.start(fleet, plan, random.Random(9))
        assert director is not None
        # Each kind ten times from each station, on top of the rate: with this seed every
        # variant comes up (the draws before the first Poisson arrival are deterministic).
        for link in links:
            for kind in KINDS:
                for _ in range(10):
                    assert director.fire(link, kind)
        await asyncio.sleep(2.0)
        director.stop()
        # Stopped, it sends nothing more; what is pending gets its answer or times out.
        await until(
            lambda: (director.expire() or True) and not director.pending, 8, "the last answers"
        )

        stats = fleet.stats
        sent, answers = dict(stats.misbehave_sent), dict(stats.misbehave_answers)
        assert set(sent) == set(KINDS)
        assert sum(sent.values()) > 4 * 10 * (6 + 3) + 20  # the Poisson arrivals came too
        for kind in KINDS:  # every misbehaviour got exactly one classification
            assert sum(n for (k, _), n in answers.items() if k == kind) == sent[kind], kind
        outcomes: list[Outcome] = list(director.samples)
        assert len(outcomes) == sum(sent.values())
        by_variant = {(o.variant, o.answer) for o in outcomes}
        assert {v for v, _ in by_variant} == set(REFERENCE_ANSWERS)
        for variant, answer in by_variant:
            assert answer == REFERENCE_ANSWERS[variant], (variant, answer)
        findings = {(o.kind, o.answer) for o in outcomes if o.finding}
        assert findings == {("schema", "accepted")}  # the date-time the library lets through

        # The stations' own traffic never saw a misbehaviour's answer, and the CSMS never
        # had to refuse or miss one of their CALLs.
        assert dict(stats.callerrors) == {} and dict(stats.timeouts) == {}
        assert stats.ignored.get("reply to an unknown or expired id", 0) == 0
        assert stats.stations_connected == 4 and stats.reconnects == 0

        # The CSMS still serves: a new station boots, and the sessions end normally.
        late = fleet.add(Station("MB-LATE", fleet.now(), config=ConfigStore(FAST)), csms.url)
        await until(lambda: late.station.boot_status == "Accepted", 5, "a late boot")
        for link in links:
            tx = link.station.transaction
            assert tx is not None
            link.hardware(lambda now, s=link.station, t=tx.id_tag: s.present_tag(t, now))
        await until(lambda: ledger.summary()["transactions_active"] == 0, 5, "all stopped")
        await until(lambda: _settled(fleet), 5, "stops delivered")

        # The ledger: nothing of the normal transactions lost or extra, and every problem
        # it found is a misbehaviour it noticed, none about a real transaction.
        stations = [link.station for link in links]
        sent_tx = {s.identity: s.transaction_messages_queued - s.dropped_messages for s in stations}
        real = {tid for s in stations for tid in ledger.station(s.identity).transactions}
        assert len(real) == 4 and all(tid < 2_000_000_000 for tid in real)
        for problem in ledger.check(sent=sent_tx):
            assert "lost" not in problem and "more than it sent" not in problem, problem
            assert re.search(r"answered with CallError|unknown transaction 2\d{9}", problem), (
                problem
            )
            assert not any(f"transaction {tid} " in problem for tid in real), problem
        for s in stations:
            record = ledger.station(s.identity)
            assert all(tx.stopped for tx in record.transactions.values())

        names = {m.name: m for m in FleetCollector(stats).collect()}
        exported = {s.labels["kind"]: s.value for s in names["fleet_misbehave_sent"].samples}
        assert exported == sent
        exported_answers = {
            (s.labels["kind"], s.labels["answer"]): s.value
            for s in names["fleet_misbehave_answers"].samples
        }
        assert exported_answers == answers

        fleet.stop_all()
        await until(lambda: stats.stations_connected == 0, 5, "clean stop")
        await csms.stop()

    run(scenario)


def test_a_stricter_csms_minus_one_ids_dropped_duplicates_and_a_hang_up() -> None:
    """A CSMS unlike the reference one: it answers frames it cannot read with a CALLERROR
    of id "-1" (as OCPP 2.0.1 asks), drops CALLs whose id it has seen, and hangs up on a
    type violation. Each is classified (and the station reconnects as usual); a station
    going away itself leaves its misbehaviours ``abandoned``."""

    async def scenario() -> None:
        seen: set[str] = set()

        async def handler(ws: ServerConnection) -> None:
            async for message in ws:
                try:
                    frame = orjson.loads(message)
                except orjson.JSONDecodeError:
                    frame = None
                if not isinstance(frame, list) or frame[0] != 2:
                    await ws.send('[4,"-1","FormationViolation","not OCPP-J",{}]')
                    continue
                uid, action, payload = frame[1], frame[2], frame[3]
                if uid in seen:
                    continue  # a reused id: dropped
                seen.add(uid)
                if uid.startswith(PREFIX) and action != "Heartbeat":
                    await ws.close(1008, "policy violation")  # types: hang up
                    return
                if action == "BootNotification":
                    body = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z"}
                    await ws.send(orjson.dumps([3, uid, {**body, "interval": 60}]).decode())
                elif not (uid.startswith(PREFIX) and action == "Heartbeat" and payload == {}
                          and int(uid[len(PREFIX):]) > 100):  # fmt: skip
                    await ws.send(orjson.dumps([3, uid, {}]).decode())

        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
            port = server.sockets[0].getsockname()[1]
            fleet = Fleet(asyncio.get_running_loop(), seed=1)
            link = fleet.add(
                Station("STRICT", fleet.now(), config=ConfigStore(FAST)), f"ws://127.0.0.1:{port}"
            )
            station = link.station
            await until(lambda: station.boot_status == "Accepted", 5, "boot")
            plan = MisbehavePlan(1.0, 1.0, (("types", 1.0),), 3, 1.5)
            director = MisbehaveDirector(fleet, plan, random.Random(2))
            answers = fleet.stats.misbehave_answers

            for _ in range(3):
                assert director.fire(link, "malformed")
            await until(lambda: answers[("malformed", "FormationViolation")] == 3, 5, "-1 ids")
            assert "-1" not in link.raw_calls  # routed, then let go

            for _ in range(4):
                assert director.fire(link, "duplicate_id")
            await until(
                lambda: (director.expire() or True) and not director.pending, 5, "duplicates"
            )
            assert answers[("duplicate_id", "ignored")] == 4

            assert director.fire(link, "types")
            await until(lambda: answers[("types", "closed")] == 1, 5, "the hang-up")
            await until(lambda: fleet.stats.reconnects == 1, 5, "the reconnect")
            await until(lambda: station.boot_status == "Accepted", 5, "boot again")

            director._ids = iter(range(101, 200))  # type: ignore[assignment]  # unanswered
            assert director.fire(link, "flood")
            fleet.stop_all()
            await until(lambda: answers[("flood", "abandoned")] == 3, 5, "abandoned")
            assert not director.pending and not link.raw_calls
            # Nothing reached the station's own endpoint; "abandoned" is not the CSMS's.
            assert fleet.stats.ignored.get("reply to an unknown or expired id", 0) == 0
            outcomes = Counter((o.kind, o.answer, o.finding) for o in director.samples)
            assert outcomes == {
                ("malformed", "FormationViolation", False): 3,
                ("duplicate_id", "ignored", False): 4,
                ("types", "closed", False): 1,
            }

    run(scenario)


# -- a real headless run -------------------------------------------------------------------------

PROFILE = """\
name: misbehave-e2e
behaviour: sessions
station:
  config: {MeterValueSampleInterval: 2, MinimumStatusDuration: 0}
id_tags: [E2E0001, E2E0002]
sessions: {first_after: [0.5, 1], duration: [2, 4], idle_between: [1, 2]}
misbehave:
  share: 1.0
  rate_per_hour: 36000
  kinds: [schema, types, flood, unknown_action]
  flood_burst: 4
  timeout: 2
"""
# The run asserts one variant of the schema kind (5 variants, drawn at random): at 10
# misbehaviours per station per second over the four kinds it asserts, even 3 s of a
# run slowed by a busy machine give ~45 schema probes, and the chance that none is that
# variant is under 1e-4 (it was 1 in 50 at the old 2/s over seven kinds).


def test_a_headless_run_prints_the_table(tmp_path: Path) -> None:
    profile = tmp_path / "misbehave-e2e.yaml"
    profile.write_text(PROFILE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleet",
            "run",
            "--headless",
            "--stations",
            "6",
            "--spawn-rate",
            "6",
            "--duration",
            "12s",
            "--profile",
            str(profile),
            "--seed",
            "3",
            "--csv",
            str(tmp_path / "locust"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = proc.stdout + proc.stderr
    # The reference CSMS accepts a timestamp that is not a date-time: a finding, so the
    # run fails (exit 1) as any run with failures does; a usage error would be 2.
    assert proc.returncode == 1, out[-3000:]
    assert "Misbehaving stations: how the CSMS answered" in out, out[-3000:]
    table = out[out.index("Misbehaving stations: how the CSMS answered") :]
    for kind in ("schema", "types", "flood", "unknown_action"):
        assert re.search(rf"^  {kind}\s+\d+", table, re.M), table
    assert "TypeConstraintViolation" in table and "findings:" in table
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert "MISBEHAVE,schema" in stats and "MISBEHAVE,flood" in stats
    failures = (tmp_path / "locust_failures.csv").read_text()
    assert "accepted: MeterValues timestamp that is not a date-time" in failures


def test_the_table_marks_findings_and_what_is_still_waiting() -> None:
    from fleet.scenarios.misbehave import table

    text = table(
        {"schema": 5, "malformed": 3},
        {
            ("schema", "FormationViolation"): 3,
            ("schema", "accepted"): 1,
            ("malformed", "timeout"): 2,
            ("malformed", "accepted"): 1,
        },
    )
    lines = text.splitlines()
    assert lines[0] == "Misbehaving stations: how the CSMS answered"
    assert re.match(r"  schema\s+5  FormationViolation\s+3$", lines[2])
    assert re.match(r"\s+accepted\s+1  finding$", lines[3])
    assert re.match(r"\s+\(still waiting\)\s+1$", lines[4])
    assert re.match(r"  malformed\s+3  timeout\s+2$", lines[5])  # silence: not a finding
    assert re.match(r"\s+accepted\s+1  finding$", lines[6])
    assert lines[-1].startswith("  findings: 2 ")
    assert table({}, {}) == ""
