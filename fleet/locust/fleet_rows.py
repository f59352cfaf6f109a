"""The Fleet tab's rows and its history of samples (see fleet.locust.webui), free of
Locust so they can be tested without gevent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.model.connector import STATUSES
from fleet.model.faults import BY_VENDOR_CODE
from fleet.reports.html import LAG_ADVICE, LAG_KEY, ms_text

_EXTRAS = (
    ("stations_started", "Stations started"),
    ("reconnects", "Reconnects"),
    ("timeouts", "Timeouts (no answer from the CSMS)"),
    ("schema_violations", "Schema violations"),
    ("transaction_messages_dropped", "Transaction messages dropped"),
)


def fleet_rows(totals: Mapping[str, Any]) -> list[dict[str, str]]:
    """The tab's rows, human-readable: counts, energy in kWh, connectors by status,
    active faults named as the guide names them, then the run's error counters.

    Every OCPP status gets a row, zero or not, so rows do not jump around as
    connectors change state; statuses the model never produces but a future one might
    are appended.
    """
    rows: list[tuple[str, str]] = []
    generator: Mapping[str, Any] = totals.get("generator") or {}
    limit = generator.get("lag_threshold_ms")
    recent = generator.get("recent_lag_p99_ms")
    if generator.get("lag_warning"):
        # First, so it shows above the numbers while the generator is the bottleneck.
        rows.append(
            (
                "WARNING: generator lag",
                f"p99 {ms_text(recent)} > {ms_text(limit)}: {LAG_ADVICE}",
            )
        )
    rows += [
        ("Stations connected", _count(totals.get("stations_connected", 0))),
        ("Transactions active", _count(totals.get("transactions_active", 0))),
        ("Energy delivered", f"{float(totals.get('energy_wh', 0.0)) / 1000:,.3f} kWh"),
        ("Offline queue (messages)", _count(totals.get("offline_queue_depth", 0))),
    ]
    connectors: Mapping[str, int] = totals.get("connectors") or {}
    statuses = [*STATUSES, *sorted(s for s in connectors if s not in STATUSES)]
    rows += [(f"Connectors: {status}", _count(connectors.get(status, 0))) for status in statuses]
    faults: Mapping[str, int] = {k: v for k, v in (totals.get("faults_active") or {}).items() if v}
    rows.append(("Faults active", _count(sum(faults.values()))))
    rows += [(f"Fault: {fault_name(code)}", _count(n)) for code, n in sorted(faults.items())]
    # Counters fleet_totals may add beyond the list, shown when present.
    rows += [(label, _count(totals[key])) for key, label in _EXTRAS if key in totals]
    callerrors: Mapping[str, int] = totals.get("callerrors") or {}
    rows += [(f"CALLERROR: {code}", _count(n)) for code, n in sorted(callerrors.items()) if n]
    if generator:
        rows += [
            ("Generator lag p99, last 10 s", ms_text(recent)),
            ("Generator lag p99, whole run", ms_text(generator.get("lag_p99_ms"))),
            ("Gevent hub lag p99, whole run", ms_text(generator.get("hub_lag_p99_ms"))),
        ]
    # Locust's table sorts rows by "name" (a hidden column here), so it carries the order.
    return [{"name": f"{i:03d}", "metric": m, "value": v} for i, (m, v) in enumerate(rows)]


def fault_name(vendor_code: str) -> str:
    """``InternalError: Firmware downgrade (0x300000)``: the OCPP error code and the
    guide's name for it, or the bare code if the guide's table does not have it."""
    error = BY_VENDOR_CODE.get(vendor_code)
    if error is None:
        return vendor_code
    if error.info == error.ocpp_code:
        return f"{error.ocpp_code} ({vendor_code})"
    return f"{error.ocpp_code}: {error.info} ({vendor_code})"


def _count(n: Any) -> str:
    return f"{int(n):,}"


# -- the fleet's totals over a run ------------------------------------------------------

SAMPLE_EVERY = 2.0
"""Seconds between samples: the pace of the web UI's own stats poll."""

CAPACITY = 300
"""Samples kept at most: ten minutes at full resolution, then thinned. A chart is some
500 pixels wide, so more points would not show more, and the chart fragment the tab
fetches every two seconds stays below ~200 KB (six connector statuses, seven charts
and the tooltips' numbers)."""

_SAMPLED = (
    "stations_connected",
    "transactions_active",
    "energy_wh",
    "offline_queue_depth",
    "reconnects",
    "timeouts",
)
_SAMPLED_LAG = ("recent_lag_p99_ms", "lag_threshold_ms")


def sample(t: float, totals: Mapping[str, Any], time_compression: float = 1.0) -> dict[str, Any]:
    """The numbers of ``totals`` the charts draw, at wall time ``t``: levels as they
    are, counters (energy, reconnects, timeouts) as running totals the charts turn
    into rates, and the model clock's speed-up (charging power is per model hour)."""
    out: dict[str, Any] = {"t": round(t, 3)}
    out.update({k: totals[k] for k in _SAMPLED if k in totals})
    generator: Mapping[str, Any] = totals.get(LAG_KEY) or {}
    if generator.get("recent_lag_p99_ms") is not None:
        out[LAG_KEY] = {k: generator[k] for k in _SAMPLED_LAG if k in generator}
    out["connectors"] = {k: v for k, v in (totals.get("connectors") or {}).items() if v}
    if time_compression != 1.0:
        out["time_compression"] = time_compression
    return out


class History:
    """The samples of one run, bounded: when full, every other sample is dropped and
    from then on only every other one kept, so the history always spans the whole run
    (at a coarser step the longer it goes) in at most ``capacity`` samples. The newest
    sample is always the last, whether kept for good or not, so charts end at now."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 2:
            raise ValueError("a history needs room for at least two samples")
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        """Forget everything (a new run starts)."""
        self._kept: list[dict[str, Any]] = []
        self._newest: dict[str, Any] | None = None  # the last sample, if not kept
        self._stride = 1  # keep every stride-th sample
        self._seen = 0

    def add(self, item: dict[str, Any]) -> None:
        if self._seen % self._stride == 0:
            if len(self._kept) >= self.capacity:
                self._kept = self._kept[::2]
                self._stride *= 2
            self._kept.append(item)
            self._newest = None
        else:
            self._newest = item
        self._seen += 1

    def samples(self) -> list[dict[str, Any]]:
        return [*self._kept, *([self._newest] if self._newest is not None else [])]
