"""Shared test helpers."""

from __future__ import annotations

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
