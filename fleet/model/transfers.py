"""GetDiagnostics and UpdateFirmware, sans-I/O (filled in by issue 3's transfer work).

The station delegates both operations here. A transfer is a small state machine:
it queues DiagnosticsStatusNotification / FirmwareStatusNotification through the
station, and asks the engine to move bytes through effects (see ``Station.effects``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.model.station import Station

Handler = Callable[["Station", dict[str, Any], float], dict[str, Any]]

HANDLERS: dict[str, Handler] = {}
"""CSMS actions this module answers, merged into the station's handler table."""


class Transfers:
    """Per-station transfer state; the station calls the hooks below."""

    __slots__ = ()

    def advance(self, station: Station, now: float) -> None:
        """Time passed (e.g. a firmware retrieveDate arrived)."""

    def next_wakeup(self) -> float | None:
        """When advance() has something to do."""
        return None

    def boot_accepted(self, station: Station, now: float) -> None:
        """The station booted and was accepted (e.g. report a firmware Installed)."""
