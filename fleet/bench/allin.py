"""``fleet bench --all-in`` and ``--scale N``: what a user pays, measured from outside.

The engine benchmark measures the engine in a bare process; users run ``fleet run``
(Locust, gevent, the Locust user per station, the summary). This mode runs the real
command as a subprocess against the sink CSMS (its own processes) and measures it the
way the issue defines it (issue 16):

* every station charges for the whole run with MeterValues (the five sampled values of
  the default MeterValuesSampledData) every 5 s (a bench profile written for the run);
* after ``--warmup`` seconds with every station connected, a ``--window`` compares the
  CPU of the whole ``fleet run`` process tree (utime + stime from ``/proc`` of every
  descendant: the CLI, the Locust master and workers) with the CALLs the sink counted;
* RSS (the tree's, summed) at two fleet sizes gives the marginal RSS per station;
* rate kept: the calls counted over the calls due (one per station per 5 s);
* the baseline (``fleet.bench.baseline --serve``: one ``ocpp`` ChargePoint per station)
  runs the same workload in the same harness, beside it.

``--scale N`` is the 100,000-station check: heartbeats every 60 s and nothing else,
``fleet run --processes auto --local-ips ...``, the sink on ``--sink-processes`` processes;
it reports the time until all N are connected (target 3 minutes), CPU, RSS and the
loop lag from the run's JSON summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROFILE = """\
name: bench-all-in
description: fleet bench --all-in; every station charges the whole run, MeterValues every 5 s.
behaviour: {behaviour}
station:
  model: EVB4S22N40M
  config:
    MeterValueSampleInterval: {meter}
    HeartbeatInterval: {heartbeat}
    WebSocketPingInterval: 0
id_tags:
  prefix: BENCH
  count: 100
evs:
  - {{name: bench, weight: 1, battery_kwh: 1000, max_current: 32, phases: 3, soc: [0.0, 0.0]}}
sessions:
  first_after: [0, 5]
  badge_after_plug: [0, 1]
  duration: [1000000, 1000000]
"""

METER_INTERVAL = 5


def _tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc (processes that exist now)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """(RSS summed over the tree, processes in it)."""
    page, total, pids = os.sysconf("SC_PAGE_SIZE"), 0, _tree(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total, len(pids)


def write_profile(directory: str, heartbeat: int, charging: bool) -> str:
    path = Path(directory) / "bench-all-in.yaml"
    path.write_text(
        PROFILE.format(
            behaviour="sessions" if charging else "idle",
            meter=METER_INTERVAL,
            heartbeat=heartbeat,
        )
    )
    return str(path)


def fleet_run_command(
    url: str, profile: str, n: int, seconds: float, spawn_rate: float, extra: list[str]
) -> list[str]:
    return [
        sys.executable, "-m", "fleet", "run", "--headless", "--csms", url, "--profile", profile,
        "--stations", str(n), "--spawn-rate", str(spawn_rate), "--duration", f"{int(seconds)}s",
        *extra,
    ]  # fmt: skip


def baseline_command(url: str, n: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fleet.bench.baseline",
        "--stations",
        str(n),
        "--url",
        url,
        "--serve",
        str(METER_INTERVAL),
    ]


def _stop(proc: subprocess.Popen[Any], patience: float = 30) -> None:
    """SIGINT first (Locust writes its summary), then the whole process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(patience)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _wait_quiet(sink: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sink.stats()["connections"] and time.monotonic() < deadline:
        time.sleep(0.5)


def measure(
    sink: Any,
    cmd: list[str],
    n: int,
    warmup: float,
    window: float,
    connect_timeout: float,
    log: str,
    due_per_second: float,
    patience: float = 30,
) -> dict[str, Any]:
    """Start ``cmd``, wait for ``n`` connections at the sink, warm up, measure a window."""
    _wait_quiet(sink)
    with open(log, "w") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A benchmark started in the background inherits SIGINT ignored, and so
            # would the run: then Ctrl-C (_stop) could not make it write its summary.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            while sink.stats()["connections"] < n:
                if proc.poll() is not None:
                    return {"stations": n, "error": f"exited {proc.returncode}; see {log}"}
                if time.monotonic() - t0 > connect_timeout:
                    got = sink.stats()["connections"]
                    return {"stations": n, "error": f"{got} of {n} connected; see {log}"}
                time.sleep(0.2)
            connected = time.monotonic() - t0
            time.sleep(warmup)
            calls0, cpu0, w0 = sink.stats()["calls"], tree_cpu_seconds(proc.pid), time.monotonic()
            time.sleep(window)
            calls1, cpu1, w1 = sink.stats()["calls"], tree_cpu_seconds(proc.pid), time.monotonic()
            rss, processes = tree_rss_bytes(proc.pid)
            still = sink.stats()["connections"]
        finally:
            _stop(proc, patience)
    calls, cpu, wall = calls1 - calls0, cpu1 - cpu0, w1 - w0
    return {
        "stations": n,
        "connected_seconds": round(connected, 1),
        "calls": calls,
        "calls_per_second": round(calls / wall, 1),
        "rate_kept": round(calls / wall / due_per_second, 3) if due_per_second else None,
        "cpu_us_per_exchange": round(cpu / calls * 1e6, 1) if calls else None,
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "rss_mb": round(rss / 2**20, 1),
        "processes": processes,
        "connections_at_end": still,
    }


def _marginal(rows: list[dict[str, Any]]) -> float | None:
    ok = [r for r in rows if "error" not in r]
    if len(ok) < 2:
        return None
    lo, hi = ok[0], ok[-1]
    return round((hi["rss_mb"] - lo["rss_mb"]) * 1024 / (hi["stations"] - lo["stations"]), 1)


def all_in(
    sink: Any, sizes: list[int], warmup: float, window: float, skip: set[str], say: Any
) -> dict[str, Any]:
    """The all-in comparison: ``fleet run`` and the baseline at each size."""
    out: dict[str, Any] = {
        "workload": f"every station charging, MeterValues (5 values) every {METER_INTERVAL} s",
        "warmup_s": warmup,
        "window_s": window,
        "loadavg_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="fleet-bench-allin-") as tmp:
        profile = write_profile(tmp, 3600, charging=True)
        for name in ("fleet_run", "baseline"):
            if name in skip:
                continue
            rows = []
            for n in sizes:
                say(f"all-in: {name}, {n} stations")
                if name == "fleet_run":
                    total = warmup + window + 120 + n / 100
                    cmd = fleet_run_command(sink.url, profile, n, total, 100.0, [])
                else:
                    cmd = baseline_command(sink.url, n)
                rows.append(
                    measure(
                        sink,
                        cmd,
                        n,
                        warmup,
                        window,
                        120 + n / 50,
                        f"{tmp}/{name}-{n}.log",
                        n / METER_INTERVAL,
                    )
                )
                if "error" in rows[-1]:
                    rows[-1]["log"] = Path(f"{tmp}/{name}-{n}.log").read_text()[-2000:]
            out[name] = {"runs": rows, "rss_kb_per_station_marginal": _marginal(rows)}
    return out


def scale(
    sink: Any,
    n: int,
    local_ips: str,
    processes: str,
    hold: float,
    say: Any,
    keep_log: str | None = None,
) -> dict[str, Any]:
    """The 100,000-station check: heartbeats every 60 s, connected within 3 minutes.
    ``keep_log``: where to copy the run's log (the master's and workers' output)."""
    with tempfile.TemporaryDirectory(prefix="fleet-bench-scale-") as tmp:
        profile = write_profile(tmp, 60, charging=False)
        summary = f"{tmp}/summary.json"
        extra = ["--processes", processes, "--json-summary", summary]
        if local_ips:
            extra += ["--local-ips", local_ips]
        spawn = max(100.0, n / 150)  # all spawned in 150 s, connected within 180 s
        cmd = fleet_run_command(sink.url, profile, n, 180 + hold + 60, spawn, extra)
        say(f"scale: {n} stations, {' '.join(cmd[2:])}")
        row = measure(sink, cmd, n, hold, hold, 240, f"{tmp}/fleet-run.log", n / 60, patience=300)
        if "error" in row:
            row["log"] = Path(f"{tmp}/fleet-run.log").read_text()[-3000:]
        row["command"] = " ".join(["fleet", *cmd[3:]]).replace(profile, "<bench profile>")
        row["connected_within_3_min"] = row.get("connected_seconds", 1e9) <= 180
        text = Path(f"{tmp}/fleet-run.log").read_text(errors="replace")
        if keep_log:
            Path(keep_log).write_text(text)
            row["log_file"] = keep_log
        row["heartbeat_warnings"] = heartbeat_warnings(text)
        try:
            import json

            data = json.loads(Path(summary).read_text())
            # The loop lag over the run: p99 of every worker's probe samples together,
            # max of the worst worker (the summary merges the workers' histograms);
            # each worker's own p99 and the worst of them from the master's totals.
            row["loop_lag"] = data.get("generator")
            lag = data.get("fleet", {}).get("generator") or {}
            row["worst_worker_lag_p99_ms"] = lag.get("worst_worker_lag_p99_ms")
            row["worker_lag"] = lag.get("workers")
            row["stations_connected_at_stop"] = data.get("fleet", {}).get("stations_connected")
        except (OSError, ValueError) as exc:
            row["loop_lag"] = None
            row["summary_error"] = f"{exc!r}; log: " + text[-1500:]
    return row


def heartbeat_warnings(log: str) -> list[str]:
    """Lines of a Locust log about heartbeats between master and workers: "Worker ...
    failed to send heartbeat, setting state to missing", "... self-healed with
    heartbeat", "... went missing", and a worker's "Didn't get heartbeat from master"
    (not the OCPP Heartbeat rows of the statistics table)."""
    keys = ("failed to send heartbeat", "self-healed", "went missing", "heartbeat from master")
    return [line for line in log.splitlines() if any(k in line for k in keys)][:50]


def table(report: dict[str, Any]) -> str:
    lines = []
    a = report.get("all_in")
    if a:
        lines.append(
            f"all-in ({a['workload']}; warm-up {a['warmup_s']:g} s, window {a['window_s']:g} s, "
            f"load {a['loadavg_at_start']:.2f} at start)"
        )
        lines.append(
            f"{'':34}{'stations':>9}{'CPU us/exch':>13}{'rate kept':>11}{'RSS MB':>9}"
            f"{'procs':>7}{'conn s':>8}"
        )
        for name in ("fleet_run", "baseline"):
            part = a.get(name)
            if not part:
                continue
            label = {"fleet_run": "fleet run --headless (Locust)", "baseline": "ocpp ChargePoint"}
            for r in part["runs"]:
                if "error" in r:
                    lines.append(f"{label[name]:34}{r['stations']:>9}  failed: {r['error']}")
                    continue
                lines.append(
                    f"{label[name]:34}{r['stations']:>9}{r['cpu_us_per_exchange']!s:>13}"
                    f"{r['rate_kept']!s:>11}{r['rss_mb']:>9}{r['processes']:>7}"
                    f"{r['connected_seconds']:>8}"
                )
            lines.append(
                f"{'':34}RSS per station (marginal): {part['rss_kb_per_station_marginal']} KB"
            )
    s = report.get("scale")
    if s:
        lines.append("")
        if "error" in s:
            lines.append(f"scale {s['stations']}: failed: {s['error']}")
        else:
            lines.append(
                f"scale {s['stations']:,} (heartbeats 60 s): connected in "
                f"{s['connected_seconds']} s, CPU {s['cpu_share_of_one_core']} cores, RSS "
                f"{s['rss_mb']} MB over {s['processes']} processes, rate kept {s['rate_kept']}, "
                f"loop lag {s.get('loop_lag')}, worst worker's lag p99 "
                f"{s.get('worst_worker_lag_p99_ms')} ms, heartbeat warnings "
                f"{len(s.get('heartbeat_warnings') or [])}"
            )
        lines.append(f"  {s.get('command')}")
    return "\n".join(lines)
