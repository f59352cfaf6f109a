"""The Fleet tab in Locust's web UI (issue 6): live fleet gauges beside Locust's own."""

from __future__ import annotations

from locust.env import Environment


def setup(environment: Environment) -> None:
    """Called once per process from the locustfile's init hook; the master (or a
    standalone process) has the web UI."""
