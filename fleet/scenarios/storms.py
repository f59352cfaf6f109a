"""Placeholder: filled in by issue 5 (see the module's final docstring)."""

from __future__ import annotations

from typing import Any


def parse(reader: Any, value: Any) -> Any:
    """Validate the profile section; None when absent."""
    if value is None:
        return None
    raise reader.fail("faults", "not supported yet")


def start(fleet: Any, plan: Any, rng: Any) -> None:
    """Run the plan on the fleet's loop (called on the loop thread)."""
