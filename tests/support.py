"""Helpers shared by the tests: every wait in a test is bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.scenarios.profile import ProfileError, load


async def until(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds: every wait in a test is bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


def wait_until(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """:func:`until` for tests without an event loop (polling real processes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(0.1)


def assert_profile_error(tmp_path: Path, body: str, line: int, field: str, needle: str) -> None:
    """Loading a profile with ``body`` fails in one line: ``file:line: field: message``
    where the message matches ``needle``."""
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ProfileError, match=needle) as info:
        load(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert "\n" not in message
