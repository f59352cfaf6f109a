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

import contextlib
import resource

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
