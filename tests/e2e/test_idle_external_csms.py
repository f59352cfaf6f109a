"""`fleet run --csms URL --profile idle` against a CSMS the fleet did not start.

The CSMS (the reference one, in this test's process) drives the stations with
RemoteStartTransaction / RemoteStopTransaction while Prometheus /metrics is scraped
from the running Locust process.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request

from ocpp.v16 import call
from support import wait_until

from fleet.csms.server import CsmsThread

STATIONS = 20


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_idle_fleet_follows_remote_commands(free_port: int) -> None:
    metrics_port = free_port
    with CsmsThread(accepted_tags=["REMOTE1"]) as csms:
        url = csms.start() if not csms.url else csms.url
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleet",
                "run",
                "--headless",
                "--csms",
                url,
                "--profile",
                "idle",
                "--stations",
                str(STATIONS),
                "--spawn-rate",
                "20",
                "--duration",
                "25s",
                "--metrics-port",
                str(metrics_port),
                "--seed",
                "3",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: len(csms.connected_stations()) == STATIONS, 20, "stations connected")
            wait_until(
                lambda: csms.ledger.summary()["status_notifications"] >= 2 * STATIONS,
                10,
                "statuses",
            )
            chosen = sorted(csms.connected_stations())[:5]
            for station in chosen:
                answer = csms.call(
                    station, call.RemoteStartTransaction(id_tag="REMOTE1", connector_id=1)
                )
                assert answer.status == "Accepted"
            # The idle profile plugs in 1..5 s after a remote start.
            wait_until(
                lambda: csms.ledger.summary()["transactions_started"] == 5,
                15,
                "5 StartTransactions",
            )

            m = wait_until(
                lambda: (
                    (s := scrape(metrics_port)).get(
                        'fleet_connectors{connector="1",status="Charging"}'
                    )
                    == 5
                    and s
                ),
                10,
                "metrics to show 5 charging connectors",
            )
            assert m["fleet_stations_connected"] == STATIONS
            assert m["fleet_transactions_active"] == 5
            assert m['fleet_ocpp_round_trip_seconds_count{action="BootNotification"}'] == STATIONS
            assert (
                m[
                    'fleet_ocpp_messages_total{action="StartTransaction",direction="sent",initiator="station"}'
                ]
                == 5
            )
            assert (
                m['fleet_csms_calls_total{action="RemoteStartTransaction",outcome="Accepted"}'] == 5
            )

            # A tag the CSMS does not know: the station refuses a remote start it cannot
            # authorize? No: Accepted first, then Authorize says Invalid and no session starts.
            for station in chosen:
                tx_ids = list(csms.ledger.station(station).active_transactions.values())
                answer = csms.call(station, call.RemoteStopTransaction(transaction_id=tx_ids[0]))
                assert answer.status == "Accepted"
            wait_until(
                lambda: csms.ledger.summary()["transactions_stopped"] == 5, 10, "5 StopTransactions"
            )
            output, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, output[-3000:]
        assert csms.ledger.check() == []
        stopped = [csms.ledger.station(s) for s in chosen]
        assert all(t.stop_reason == "Remote" for r in stopped for t in r.transactions.values())
