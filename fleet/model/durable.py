"""What a Charge Pro keeps in non-volatile memory: the state that survives a reboot.

One notion serves three paths: a Reset or firmware reboot (``Station.rebooted``), a
power cut (``Station.power_lost`` then ``rebooted``), and the end of a run with
``--state-dir`` (the process ends, which for the unit is a power cut; the next run's
station is built from the profile, :func:`restore` loads this into it, and ``rebooted``
finishes the power cycle: an interrupted transaction is stopped with reason PowerLoss,
as the real device reports it after power returns).

What is kept: the energy register, the configuration, the availability of connector 0
and 1, the transaction in progress, the queued transaction messages and security
events (exactly :meth:`fleet.model.outbox.Outbox.durable_messages`, what ``Outbox.reboot``
keeps), the Local Authorization List, the Authorization Cache, the installed charging
profiles, a reservation and the next local transaction number. The rest (a CALL in
flight as such, statuses reported, the driver at the reader, faults) is volatile.

The snapshot is a JSON-able dict (plain data, versioned by ``FORMAT``), so the engine
may store it anywhere; sans-I/O, like the rest of the model.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from fleet.model.auth import IdTagInfo
from fleet.model.config import ConfigStore
from fleet.model.outbox import Outgoing
from fleet.model.port import StationPort
from fleet.model.records import JsonDict, Transaction
from fleet.model.reservation import Reservation
from fleet.model.smart_charging import ChargingProfile, Period

FORMAT = 1
"""Version of the snapshot's layout; a snapshot of another version is not restored."""

_TX_FIELDS = tuple(f.name for f in fields(Transaction))


class DurableStateError(ValueError):
    """A snapshot this model cannot restore (another FORMAT, another station)."""


def snapshot(st: StationPort, now: float) -> JsonDict:
    """The station's durable state as of ``now`` (the register integrated up to it)."""
    st.integrate(now)
    refs: dict[int, int] = {}
    transactions: list[JsonDict] = []

    def ref(tx: Transaction) -> int:
        key = id(tx)
        if key not in refs:
            refs[key] = len(transactions)
            transactions.append({name: getattr(tx, name) for name in _TX_FIELDS})
        return refs[key]

    current = st.transaction
    messages = [
        {
            "action": m.action,
            "payload": m.payload,
            "transaction": None if m.transaction is None else ref(m.transaction),
            "failures": m.failures,
        }
        for m in st.outbox.durable_messages()
    ]
    local_list = st.auth.local_list
    return {
        "format": FORMAT,
        "identity": st.identity,
        "saved_at": now,
        "energy_wh": st.meter.energy_wh,
        "config": st.config.snapshot(),
        "operative": [c.operative for c in st.connectors],
        "next_local_tx": st.next_local_tx,
        "transaction": None if current is None or current.standalone else ref(current),
        "transactions": transactions,
        "messages": messages,
        "local_list": {
            "version": local_list.version,
            "entries": [[tag, asdict(info)] for tag, info in local_list.items()],
        },
        "cache": [[tag, asdict(info)] for tag, info in st.auth.cache.items()],
        "charging_profiles": [
            {**asdict(p), "periods": [asdict(x) for x in p.periods]}
            for p in st.smart.profiles.values()
        ],
        "reservation": None if st.reservation is None else asdict(st.reservation),
    }


def restore(st: StationPort, data: JsonDict, now: float) -> ConfigStore:
    """Load a :func:`snapshot` into a station just built (from its profile), as the
    unit's memory is when power returns, and return its configuration store for the
    station to take; then the caller finishes the power cycle (``Station.rebooted``),
    which reports an interrupted transaction."""
    if data.get("format") != FORMAT:
        raise DurableStateError(f"snapshot format {data.get('format')!r}, expected {FORMAT}")
    if data.get("identity") != st.identity:
        raise DurableStateError(f"snapshot of {data.get('identity')!r}, not {st.identity!r}")
    st.meter.energy_wh = float(data["energy_wh"])
    st.meter.since = now
    for conn, operative in zip(st.connectors, data["operative"], strict=True):
        conn.operative = bool(operative)
    st.next_local_tx = int(data["next_local_tx"])
    transactions = [Transaction(**t) for t in data["transactions"]]
    current = data["transaction"]
    if current is not None:
        tx = transactions[current]
        st.transaction = tx
        c1 = st.connectors[tx.connector_id]
        c1.in_transaction = True
        c1.authorized = True
    st.outbox.restore(
        [
            Outgoing(
                m["action"],
                m["payload"],
                None if m["transaction"] is None else transactions[m["transaction"]],
                failures=int(m["failures"]),
                offline=True,
            )
            for m in data["messages"]
        ]
    )
    lists = data["local_list"]
    st.auth.local_list.load(
        int(lists["version"]), [(tag, IdTagInfo(**info)) for tag, info in lists["entries"]]
    )
    for tag, info in data["cache"]:
        st.auth.cache.put(tag, IdTagInfo(**info), now)
    for raw in data["charging_profiles"]:
        periods = tuple(Period(**p) for p in raw["periods"])
        profile = ChargingProfile(**{**raw, "periods": periods})
        st.smart.profiles[profile.profile_id] = profile
    reservation: Any = data["reservation"]
    st.reservation = None if reservation is None else Reservation(**reservation)
    return ConfigStore.restore(data["config"])
