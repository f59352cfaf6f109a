"""`fleet run --web` with the embedded CSMS, driven through the web UI's HTTP API as the
form drives it: runs one after another with different profiles (issue 14, items 9, 10).

Profile A: fast sessions and a long fault storm on every station, id tags ALPHA*.
Profile B: fast sessions, security profile 1 (an AuthorizationKey), id tags BRAVO*.
Each run must authorize every badge (the embedded CSMS follows the form's profile: its
id tags and its key), crash no user, and after STOP leave no stopped station in the live
figures of /fleet/totals and /metrics (the counters stay).
"""

from __future__ import annotations

import json
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import fleet_web, wait_until

HERE = Path(__file__).parent
STATIONS = 6


def http(url: str, data: dict[str, str] | None = None) -> bytes:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    return bytes(urllib.request.urlopen(url, data=body, timeout=10).read())


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def profile(tmp: Path, name: str, tags: str, extra_station: str = "", extra: str = "") -> Path:
    text = (HERE / "fast-sessions.yaml").read_text()
    text = text.replace("name: fast-sessions", f"name: {name}")
    text = text.replace("id_tags: [E2E0001, E2E0002, E2E0003, E2E0004]", f"id_tags: {tags}")
    text = text.replace("station:\n", "station:\n" + extra_station, 1) + extra
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("switch")
    alpha = profile(
        tmp,
        "alpha",
        "[ALPHA01, ALPHA02, ALPHA03]",
        # DEM communication loss on every station from the first second, for an hour:
        # still active when the run is stopped.
        extra="faults:\n  storms:\n"
        "    - {at: 0.5, duration: 3600, share: 1.0, codes: [0x30000B], correlated: true}\n",
    )
    bravo = profile(
        tmp,
        "bravo",
        "[BRAVO01, BRAVO02, BRAVO03]",
        extra_station="  security: {profile: 1, authorization_key: BravoKey-0123456789}\n",
    )
    web_port, metrics_port = port(), port()
    log_path = tmp / "run.log"
    args = ["--metrics-port", str(metrics_port), "--stations", str(STATIONS)]
    args += ["--spawn-rate", str(STATIONS), "--profile", str(alpha), "--seed", "3"]
    with fleet_web(args, web_port, log_path) as base:
        yield {
            "base": base,
            "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
            "alpha": str(alpha),
            "bravo": str(bravo),
            "log": log_path,
        }


def stats(base: str) -> dict[str, Any]:
    return dict(json.loads(http(base + "/stats/requests")))


def entry(body: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in body["stats"] if s.get("method") == "OCPP" and s["name"] == name]
    return found[0] if found else {"num_requests": 0, "num_failures": 0}


def metrics(url: str) -> dict[str, float]:
    """Sample name -> the sum over its series."""
    out: dict[str, float] = {}
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def one_run(web: dict[str, Any], which: str, faults: bool) -> None:
    """Start a run with profile ``which`` from the form, see its badges accepted, stop it
    and check what is left."""
    base = web["base"]
    http(
        base + "/swarm",
        {"user_count": str(STATIONS), "spawn_rate": str(STATIONS), "fleet_profile": web[which]},
    )

    def working() -> dict[str, Any] | None:
        body = stats(base)
        totals = json.loads(http(base + "/fleet/totals"))["totals"]
        authorized = entry(body, "Authorize")["num_requests"]
        busy = totals["transactions_active"] > 0 and (not faults or totals["faults_active"])
        if authorized >= STATIONS and busy and totals["stations_connected"] == STATIONS:
            return body
        return None

    body = wait_until(working, 60, f"profile {which}: every station badging and charging")
    log = web["log"].read_text()
    assert body["errors"] == [], (body["errors"], log[-3000:])  # no Authorize failures
    assert entry(body, "Authorize")["num_failures"] == 0
    assert entry(body, "StartTransaction")["num_requests"] > 0
    before = metrics(web["metrics"])
    assert before["fleet_transactions_active"] > 0
    assert (before.get("fleet_faults_active", 0) > 0) == faults

    http(base + "/stop", {})
    wait_until(
        lambda: json.loads(http(base + "/fleet/totals"))["totals"]["stations_connected"] == 0,
        30,
        "every station offline after STOP",
    )
    # No user crashed (Locust's exceptions table), and no exchange failed.
    assert json.loads(http(base + "/exceptions"))["exceptions"] == [], log[-3000:]
    assert stats(base)["errors"] == []
    totals = json.loads(http(base + "/fleet/totals"))["totals"]
    assert totals["transactions_active"] == 0
    assert totals["faults_active"] == {}
    assert totals["stations_started"] == 0
    after = metrics(web["metrics"])
    assert after["fleet_transactions_active"] == 0
    assert after.get("fleet_faults_active", 0) == 0
    assert after["fleet_stations_connected"] == 0
    # Counters stay counters: what happened is still counted.
    assert after["fleet_transactions_started_total"] >= before["fleet_transactions_started_total"]
    if faults:
        assert after["fleet_faults_raised_total"] >= STATIONS


def test_profile_switches_in_the_web_form_give_a_working_fleet(web: dict[str, Any]) -> None:
    one_run(web, "alpha", faults=True)
    one_run(web, "bravo", faults=False)  # other tags, and an AuthorizationKey
    one_run(web, "alpha", faults=True)  # and back: the old fleet is replaced cleanly
