"""A profile's stations, built as a run builds them (fleet.locust.bridge).

The stations of one profile (or of one of its kinds) share its configuration
overrides (:class:`fleet.model.config.ConfigDefaults`, validated once): each station's
store keeps only what changes on that station, so a fleet of 100,000 holds the
profile's settings once, not 100,000 times (issue 16).
"""

from __future__ import annotations

from typing import Any

from fleet.model.config import ConfigDefaults, ConfigStore
from fleet.model.records import BootInfo
from fleet.model.station import Station
from fleet.scenarios import network
from fleet.scenarios.profile import Profile


class StationBuilder:
    """Makes new stations of ``profile``, its shared configuration made once per kind."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        # id() of a kind's config mapping (held by the profile) -> its shared defaults.
        self._defaults: dict[int, ConfigDefaults] = {}

    def build(self, identity: str, number: int | None, now: float, rng: Any) -> Station:
        """The ``number``-th station (1-based; its kind), ``identity``, with an EV from
        ``rng``, new from the factory with the profile's settings."""
        profile = self.profile
        model, firmware, config = profile.station_setup(number or 1)
        defaults = self._defaults.get(id(config))
        if defaults is None:
            defaults = self._defaults[id(config)] = ConfigDefaults(config)
        station = Station(
            identity,
            now,
            config=ConfigStore(defaults=defaults),
            ev=profile.pick_ev(rng),
            boot_info=BootInfo(model=model, serial=identity[-25:], firmware=firmware),
        )
        station.reboot_seconds = profile.reboot_seconds
        station.reset_close_delay = profile.reset_close_delay
        station.reject_number_phases = profile.reject_number_phases
        if profile.faults:
            station.enabled_faults = profile.faults.enabled
        network.configure(station, profile.network)
        return station
