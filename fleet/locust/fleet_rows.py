"""The Fleet tab's rows (see fleet.locust.webui), free of Locust so they can be
tested without gevent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.model.connector import STATUSES
from fleet.model.faults import BY_VENDOR_CODE

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
    rows: list[tuple[str, str]] = [
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
