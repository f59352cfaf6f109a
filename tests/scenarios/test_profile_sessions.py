"""Profile sections of issue 5 (sessions source, time compression, kinds, load) and
trace files: good files load, each mistake is one exact line naming file:line: field."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from fleet.scenarios import behaviour, replay
from fleet.scenarios.profile import ProfileError, available, load

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_profiles() -> None:
    names = {p.stem for p in available()}
    assert {"commuter-depot", "public-ac", "boot-storm", "soak"} <= names
    depot = load("commuter-depot")
    assert depot.sessions.source == "trace" and depot.time_compression == 144
    assert depot.sessions.trace is not None and depot.sessions.trace.sessions >= 300
    public = load("public-ac")
    assert public.sessions.source == "synthetic"
    assert [k.name for k in public.kinds] == ["three-phase", "single-phase"]
    assert load("boot-storm").load is not None


def test_kinds_counts_then_weights(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        "station:\n  config: {MeterValueSampleInterval: 30}\n"
        "kinds:\n"
        "  - {name: pilot, count: 2, firmware: 3.1.0}\n"
        "  - {name: tri, weight: 3}\n"
        "  - {name: mono, weight: 1, model: EVB1, config: {PhasesConnection: 4}}\n"
    )
    p = load(str(path))
    assert [p.kind_for(n).name for n in (1, 2)] == ["pilot", "pilot"]  # type: ignore[union-attr]
    rest = [p.kind_for(n).name for n in range(3, 403)]  # type: ignore[union-attr]
    assert 290 <= rest.count("tri") <= 310
    model, firmware, config = p.station_setup(1)
    assert (model, firmware, config["MeterValueSampleInterval"]) == ("EVB4S22N40M", "3.1.0", 30)
    mono = next(n for n in range(3, 50) if p.kind_for(n).name == "mono")  # type: ignore[union-attr]
    model, _, config = p.station_setup(mono)
    assert (model, config["PhasesConnection"], config["MeterValueSampleInterval"]) == (
        "EVB1",
        4,
        30,
    )


def test_synthetic_generator_is_seeded_and_follows_the_hours(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "sessions:\n"
        "  synthetic:\n"
        "    arrivals_per_hour: [0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0,\n"
        "                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n"
        "    dwell: {dist: lognormal, median: 600, sigma: 0.2, min: 300, max: 900}\n"
        "    energy_kwh: [1, 5]\n"
        "    gap: 60\n"
        "    horizon: 86400\n"
    )
    p = load(str(path))
    spec = p.sessions.synthetic
    assert p.sessions.source == "synthetic" and spec is not None
    a = list(replay.generate(spec, random.Random(3)))
    assert a == list(replay.generate(spec, random.Random(3)))
    assert a != list(replay.generate(spec, random.Random(4)))
    assert a and all(8 * 3600 <= s.arrival < 10 * 3600 for s in a)
    assert all(300 <= s.dwell <= 900 and 1 <= (s.energy_kwh or 0) <= 5 for s in a)
    assert all(b.arrival >= s.arrival + s.dwell + 60 for s, b in itertools.pairwise(a))
    # Over many station-days the count matches the rates: 4 arrivals a day offered, those
    # while the station is occupied go elsewhere (Erlang loss, one server: each session
    # blocks ~11 min, so 2/h * 2 h / (1 + 2/h * 0.183 h) = 2.93 a day).
    many = [len(list(replay.generate(spec, random.Random(i)))) for i in range(300)]
    assert 2.6 < sum(many) / len(many) < 3.3


def test_ev_for_a_session_takes_exactly_its_energy() -> None:
    profile = load("commuter-depot")

    class _Link:
        station = None

    b = behaviour.Behaviour(_Link(), profile, None, random.Random(1), start=0.0)  # type: ignore[arg-type]
    for kwh, ev in ((10.0, "sedan"), (39.0, "city-car"), (120.0, None)):
        model = b.ev_for(replay.Session(0, 3600, kwh, ev))
        wanted = (model.target_soc - model.soc) * model.battery_wh
        assert wanted == pytest.approx(kwh * 1000.0)
        assert 0 <= model.soc < model.target_soc <= 1.0


TRACE_HEADER = "station,arrival,dwell,energy_kwh,ev,id_tag\n"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "sessions:\n  source: replay\n",
            "{p}:2: sessions.source: must be one of random, synthetic, trace, got 'replay'",
        ),
        (
            "sessions:\n  time_compression: 0\n",
            "{p}:2: sessions.time_compression: must be 0.001..1e+06, got 0",
        ),
        (
            "sessions:\n  source: synthetic\n",
            "{p}:2: sessions.source: source synthetic needs sessions.synthetic",
        ),
        (
            "sessions:\n  synthetic:\n    arrivals_per_hour: [1, 2]\n    dwell: [60, 120]\n",
            "{p}:3: sessions.synthetic.arrivals_per_hour: expected 24 numbers: arrivals per "
            "station in each hour of the day",
        ),
        (
            "sessions:\n  synthetic:\n    arrivals_per_hour: [" + ", ".join(["1"] * 24) + "]\n"
            "    dwell: {dist: gamma, min: 1}\n",
            "{p}:4: sessions.synthetic.dwell.dist: must be uniform or lognormal, got 'gamma'",
        ),
        (
            "sessions:\n  synthetic:\n    arrivals_per_hour: [" + ", ".join(["1"] * 24) + "]\n"
            "    dwell: {dist: lognormal, median: 60}\n",
            "{p}:4: sessions.synthetic.dwell: a lognormal needs median and sigma",
        ),
        (
            "sessions:\n  trace: nowhere.csv\n",
            "{p}:2: sessions.trace: {d}/nowhere.csv: cannot read trace (No such file or directory)",
        ),
        (
            "kinds:\n  - {name: a, weight: 1, count: 3}\n",
            "{p}:2: kinds.0.count: give weight or count, not both",
        ),
        (
            "kinds:\n  - name: a\n  - name: b\n    config:\n      HeartbeatInterval: soon\n",
            "{p}:5: kinds.1.config.HeartbeatInterval: ",
        ),
        (
            "kinds:\n  - {name: a, colour: red}\n",
            "{p}:2: kinds.0.colour: unknown field (expected one of: config, count, firmware, "
            "model, name, weight)",
        ),
        (
            "load:\n  shape: wave\n  stations: 3\n",
            "{p}:2: load.shape: must be one of ramp, steps, boot-storm, got 'wave'",
        ),
        ("load:\n  shape: ramp\n", "{p}:1: load: needs stations (how many at the peak)"),
        (
            "load:\n  shape: steps\n  stations: 10\n  every: -5\n",
            "{p}:4: load.every: must be >= 0.001, got -5",
        ),
    ],
)
def test_bad_profile_sections(tmp_path: Path, body: str, error: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ProfileError) as info:
        load(str(path))
    message = str(info.value)
    assert "\n" not in message
    expected = error.format(p=path, d=tmp_path)
    if expected.endswith(": "):
        assert message.startswith(expected), message
    else:
        assert message == expected


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ("1,10,abc,,,\n", "{t}:3: dwell: expected a number, got 'abc'"),
        ("1,10,60,,,\n1,-1,60,,,\n", "{t}:4: arrival: must be >= 0, got '-1'"),
        ("1,10,0,,,\n", "{t}:3: dwell: must be > 0, got 0"),
        ("1,10,60,5,tractor,\n", "{t}:3: ev: unknown EV model 'tractor' (profile has: small)"),
        (",10,60,,,\n", "{t}:3: station: missing"),
    ],
)
def test_bad_trace_rows_name_the_trace_line(tmp_path: Path, rows: str, error: str) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("# a comment line\n" + TRACE_HEADER + rows)
    path = tmp_path / "p.yaml"
    path.write_text("evs:\n  - {name: small}\nsessions:\n  trace: t.csv\n")
    with pytest.raises(ProfileError) as info:
        load(str(path))
    assert str(info.value) == f"{path}:4: sessions.trace: " + error.format(t=trace)


def test_json_trace_and_station_ids(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    trace.write_text(
        '{"sessions": [{"station": "CP00007", "arrival": 5, "dwell": 60, "id_tag": "T1"},'
        ' {"station": 2, "arrival": 50, "dwell": 60, "energy_kwh": 3},'
        ' {"station": 2, "arrival": 5, "dwell": 20}]}'
    )
    t = replay.load_trace(trace)
    assert t.sessions == 3
    assert t.for_station(7, "CP00007")[0].id_tag == "T1"
    assert [s.arrival for s in t.for_station(2, "CP00002")] == [5, 50]
    trace.write_text('[{"station": 1, "arrival": 5, "dwell": 60, "when": 3}]')
    with pytest.raises(replay.TraceError, match=r"sessions\.0: when: unknown field"):
        replay.load_trace(trace)


def test_sample_trace_is_reproducible(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "day.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "profiles/traces/generate.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    shipped = ROOT / "profiles/traces/commuter-day.csv"
    assert out.read_bytes() == shipped.read_bytes()
    assert shipped.stat().st_size < 1_000_000
    t = replay.load_trace(shipped)
    assert len(t.by_station) >= 250
    assert max(s.arrival for rows in t.by_station.values() for s in rows) > 20 * 3600
