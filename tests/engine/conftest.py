"""Every CALL a station sends in these tests is schema-checked (tests/support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_calls_checked(own_calls_schema_checked: None) -> None:
    """See support.own_calls_schema_checked."""
