"""Shared test helpers."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_gevent_in_the_test_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """Importing Locust monkey-patches the importing process with gevent (threading,
    sockets, time): every later test would run on gevent primitives and hang or fail
    far from the cause. Locust runs in subprocesses only; this names the test that
    broke that rule."""
    yield
    import sys

    monkey = sys.modules.get("gevent.monkey")
    patched = monkey is not None and monkey.is_module_patched("threading")
    if "locust" in sys.modules or patched:
        pytest.exit(f"{request.node.nodeid} imported Locust (gevent) into the test process")


@pytest.fixture
def own_calls_schema_checked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """ARCHITECTURE: every message the fleet sends is checked against the official
    schemas in tests. The engine skips that check of the stations' own CALLs on its hot
    path; under this fixture every Fleet checks them (FLEET_VALIDATE_OUTGOING), and an
    invalid one, which the engine only logs and counts (it is never sent), fails the
    test. A test that provokes one on purpose clears ``caplog`` once it has seen it.
    tests/engine and tests/scenarios use it for every test."""
    from fleet.engine.fleet import VALIDATE_OUTGOING_ENV
    from fleet.engine.link import log as link_log

    monkeypatch.setenv(VALIDATE_OUTGOING_ENV, "1")
    yield
    invalid = [
        r.getMessage()
        for r in caplog.get_records("setup") + caplog.get_records("call")
        if r.name == link_log.name and r.levelno >= logging.ERROR and ": invalid " in r.getMessage()
    ]
    assert not invalid, f"the stations sent invalid messages: {invalid}"
