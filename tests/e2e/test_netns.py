"""Scale-out across hosts, for real (issue 16): the reference CSMS, a Locust master and
two workers, each in its own network namespace with its own address, joined by veth
pairs to a bridge in a fifth namespace; what a multi-host run looks like, on one machine.

Everything network-wise is made by the test and removed afterwards, even on failure:
the namespaces (named after this process, so parallel runs do not meet), the veth
pairs and the bridge inside them, and the addresses, from 10.200.0.0/24 and only on
interfaces inside those namespaces (no route leaves them; the host's own namespace is
not touched). Root only (``ip netns`` needs CAP_SYS_ADMIN); skipped with the reason
otherwise.

What it proves: the stations connect from the workers' addresses to the CSMS's across
the namespaces (the CSMS namespace's sockets show both workers as peers); the master,
which connects no station, reports the sum of both workers (its JSON summary); the
station ids are unique across the workers (the CSMS's ledger, from its journal file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import master_waiting, wait_until

from fleet.csms.ledger import JournaledLedger

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "chargepro.py"
STATIONS = 12
NET = "10.200.0"
ADDRESSES = {"csms": f"{NET}.1", "master": f"{NET}.2", "w1": f"{NET}.3", "w2": f"{NET}.4"}
CSMS_PORT = 9000
MASTER_PORT = 5557
RUN_SECONDS = 25


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"fleetprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"ip netns add failed: {getattr(exc, 'stderr', exc)}"
    _ip("netns", "del", probe)
    return None


class Hosts:
    """Five namespaces: a bridge, and four 'hosts' plugged into it."""

    def __init__(self) -> None:
        tag = f"fnt{os.getpid()}"
        self.bridge = f"{tag}-br"
        self.ns = {name: f"{tag}-{name}" for name in ADDRESSES}
        self.made: list[str] = []

    def make(self) -> None:
        _ip("netns", "add", self.bridge)
        self.made.append(self.bridge)
        _ip("-n", self.bridge, "link", "set", "lo", "up")
        _ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge, "link", "set", "br0", "up")
        for name, ns in self.ns.items():
            _ip("netns", "add", ns)
            self.made.append(ns)
            # Both ends are created inside the test's namespaces: one on the bridge,
            # the other as the host's eth0.
            _ip("-n", self.bridge, "link", "add", f"v-{name}", "type", "veth",
                "peer", "name", "eth0", "netns", ns)  # fmt: skip
            _ip("-n", self.bridge, "link", "set", f"v-{name}", "master", "br0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{ADDRESSES[name]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def remove(self) -> None:
        """Deleting a namespace deletes its veth ends (and so their peers) and bridge."""
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self.made.clear()

    def popen(self, name: str, cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("FLEET_SHAPE", None)
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns[name], *cmd],
            stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
        )  # fmt: skip

    def peers(self, name: str, port: int) -> list[str]:
        """Remote addresses of the established TCP connections to ``port`` in ``name``."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns[name], "ss", "-Htn", "state", "established",
             f"( sport = :{port} )"],
            capture_output=True, text=True, timeout=20,
        ).stdout  # fmt: skip
        return [line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()]


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    made = Hosts()
    try:
        made.make()
        yield made
    finally:
        made.remove()


def _wait(check: Callable[[], Any], timeout: float, what: str, logs: Path) -> Any:
    """:func:`support.wait_until`, with the processes' logs in the failure."""
    try:
        return wait_until(check, timeout, what)
    except AssertionError as exc:
        tails = "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in logs.glob("*.log"))
        raise AssertionError(f"{exc}\n{tails}") from None


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_master_two_workers_and_the_csms_on_four_hosts(tmp_path: Path, hosts: Hosts) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    journal = tmp_path / "ledger.jsonl"
    summary = tmp_path / "summary.json"
    python = sys.executable
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(
            hosts.popen(
                "csms",
                [python, "-m", "fleet", "csms", "--host", ADDRESSES["csms"],
                 "--port", str(CSMS_PORT), "--accept-all", "--ledger-journal", str(journal)],
                logs / "csms.log", tmp_path,
            )
        )  # fmt: skip
        _wait(lambda: journal.exists(), 30, "the CSMS to start", logs)
        master = hosts.popen(
            "master",
            [python, "-m", "locust", "-f", str(LOCUSTFILE),
             "--host", f"ws://{ADDRESSES['csms']}:{CSMS_PORT}/ocpp",
             "--master", "--master-bind-host", ADDRESSES["master"],
             "--master-bind-port", str(MASTER_PORT),
             "--expect-workers", "2", "--expect-workers-max-wait", "60",
             "--headless", "-u", str(STATIONS), "-r", str(STATIONS), "-t", f"{RUN_SECONDS}s",
             "--fleet-profile", "idle", "--fleet-seed", "7",
             "--fleet-summary-json", str(summary)],
            logs / "master.log", tmp_path,
        )  # fmt: skip
        procs.append(master)
        _wait(master_waiting(logs / "master.log", master), 30, "the master to start", logs)
        workers = []
        for name in ("w1", "w2"):
            worker = hosts.popen(
                name,
                [python, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
                 "--master-host", ADDRESSES["master"], "--master-port", str(MASTER_PORT)],
                logs / f"{name}.log", tmp_path,
            )  # fmt: skip
            procs.append(worker)
            workers.append(worker)

        def all_connected() -> list[str] | None:
            peers = hosts.peers("csms", CSMS_PORT)
            return peers if len(peers) == STATIONS else None

        peers = _wait(all_connected, 60, f"{STATIONS} stations connected", logs)
        # Every station came from one of the two workers' hosts, and both run stations.
        assert set(peers) == {ADDRESSES["w1"], ADDRESSES["w2"]}, peers

        assert master.wait(timeout=RUN_SECONDS + 60) == 0, (logs / "master.log").read_text()[-3000:]
        for worker in workers:
            assert worker.wait(timeout=30) == 0
    finally:
        _stop(procs)

    ledger = JournaledLedger.read(str(journal))
    ids = sorted(ledger.station_ids())
    assert ids == [f"CP{k:05d}" for k in range(1, STATIONS + 1)]  # unique across workers
    assert ledger.check() == []
    data = json.loads(summary.read_text())
    # The master connected nothing: what it reports is the sum of both workers.
    assert data["fleet"]["stations_started"] == STATIONS, data["fleet"]
    assert data["fleet"]["stations_connected"] == STATIONS, data["fleet"]
    assert data["actions"]["BootNotification"]["requests"] >= STATIONS, data["actions"]
    assert len(data["fleet"]["generator"]["workers"]) == 2, data["fleet"]["generator"]
    master_log = (logs / "master.log").read_text()
    assert "missing" not in master_log.lower(), master_log[-3000:]
