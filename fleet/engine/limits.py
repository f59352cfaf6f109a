"""Process limits a fleet needs (issue 7): one open file per station, and then some.

Every connected station holds one socket, so a process running N stations needs N
file descriptors plus a few for itself (the event loop, Locust's ZeroMQ sockets, the
metrics server, log files, shared libraries). Linux starts most processes with a soft
limit of 1024 while the hard limit is often far higher; an unprivileged process may
raise its soft limit up to the hard one, so the fleet does that at start. When the
stations asked for would still not fit, the run stops before anything starts, in one
line that says how many files are needed and how many the process may open: a fleet
that hits EMFILE halfway through a boot storm fails in confusing ways (connect errors
that look like a CSMS problem).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket

HEADROOM = 100
"""Descriptors a fleet process uses besides its stations' sockets (measured: a Locust
worker with the metrics endpoint and a few log files holds ~40; doubled and rounded)."""


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (soft, hard) after.

    Never lowers anything, and never fails: where the limit cannot be changed (a
    sandbox, an unlimited hard limit the kernel caps lower) the current limit stays.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        # e.g. hard = infinity above the kernel's nr_open: keep the soft limit.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def files_needed(stations: int, per_station: int = 1) -> int:
    """Open files a process running ``stations`` stations needs, about."""
    return stations * per_station + HEADROOM


def stations_problem(stations: int, per_station: int = 1, why: str = "") -> str | None:
    """Raise the limit, then say in one line (without the ``fleet: `` prefix) why
    ``stations`` stations do not fit in this process, or None when they do.

    ``per_station``: sockets per station in this process (2 when it also serves the
    embedded CSMS, which holds the other end of each connection), explained by ``why``.
    """
    soft, hard = raise_open_file_limit()
    need = files_needed(stations, per_station)
    if soft == resource.RLIM_INFINITY or need <= soft:
        return None
    shown_hard = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    return (
        f"{stations} stations need about {need} open files{why}; this process may open "
        f"{soft} (hard limit {shown_hard}): raise it with ulimit -n"
    )


def enforce(stations: int | None) -> None:
    """Raise the limit; when ``stations`` would not fit, print one line and exit 2.

    For front ends (``fleet run``, a Locust process at init): ``stations`` None only
    raises the limit (e.g. a Locust master, which holds no station, or a worker whose
    share of the users is not known yet).
    """
    import sys

    if stations is None or stations <= 0:
        raise_open_file_limit()
        return
    problem = stations_problem(stations)
    if problem is not None:
        sys.stderr.write(f"fleet: {problem}\n")
        sys.exit(2)


LOCAL_IPS_ENV = "FLEET_LOCAL_IPS"
"""The environment variable a Fleet takes its source addresses from when none are given
(``fleet run --local-ips`` sets it for the Locust processes)."""

EPHEMERAL_PORTS = 28_232
"""Ports in Linux's default ``net.ipv4.ip_local_port_range`` (32768-60999): the most
connections one source address can hold to one CSMS address and port."""


def auto_processes(stations: int, soft_limit: int | None = None) -> int:
    """Locust worker processes for ``stations`` (``fleet run --processes auto``): as few
    as the open-file limit allows (each worker holds its share of the sockets plus
    HEADROOM), at least one. Fewer workers means fewer copies of Locust and gevent and
    fewer loop threads competing for the cores; the limit is what forces more."""
    if soft_limit is None:
        soft_limit, _ = raise_open_file_limit()
    if soft_limit == resource.RLIM_INFINITY:
        return 1
    per_worker = soft_limit - HEADROOM
    if per_worker <= 0:
        raise ValueError(f"an open-file limit of {soft_limit} leaves no room for stations")
    return max(1, -(-stations // per_worker))


def parse_local_ips(text: str) -> list[str]:
    """``--local-ips``: source addresses for the stations' connections, as k6 takes them:
    comma-separated addresses, ranges (``127.0.0.2-127.0.0.9``) and CIDR blocks
    (``10.0.0.0/24``: its host addresses). One source address reaches one CSMS address
    and port over at most ~28,000 ephemeral ports (EPHEMERAL_PORTS); N addresses, N
    times that. Raises ValueError on anything else."""
    import ipaddress

    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "/" in part:
            net = ipaddress.ip_network(part, strict=False)
            hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
            out.extend(str(a) for a in hosts)
        elif "-" in part:
            lo_text, hi_text = part.split("-", 1)
            lo, hi = ipaddress.ip_address(lo_text.strip()), ipaddress.ip_address(hi_text.strip())
            if lo.version != hi.version or int(hi) < int(lo):
                raise ValueError(f"bad address range {part!r}")
            if int(hi) - int(lo) >= 65_536:
                raise ValueError(f"address range {part!r} is larger than 65,536 addresses")
            out.extend(str(ipaddress.ip_address(int(lo) + i)) for i in range(int(hi) - int(lo) + 1))
        else:
            out.append(str(ipaddress.ip_address(part)))
    if not out:
        raise ValueError("no source address given")
    return out


IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
"""Linux 4.2+: ``bind`` to an address without picking the port yet."""


async def connect_from(
    loop: asyncio.AbstractEventLoop, local_ip: str, host: str, port: int
) -> socket.socket:
    """A TCP socket connected to ``host:port`` from ``local_ip`` (a ``--local-ips`` address).

    ``create_connection(local_addr=(ip, 0))`` binds before it connects, and a bind to
    port 0 must find a port free for *every* destination: the kernel walks its bind
    table, which gets slower as the ports fill (at ~60,000 connections from 8 addresses
    the connects took most of the CPU and a 100,000-station ramp collapsed, issue 16).
    With ``IP_BIND_ADDRESS_NO_PORT`` the port is chosen at ``connect`` for this 4-tuple,
    as for a socket that was never bound (and a port may serve several destinations)."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        with contextlib.suppress(OSError):  # not Linux: a plain bind, as before
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((local_ip, 0))
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock
