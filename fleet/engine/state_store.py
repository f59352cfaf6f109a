"""The stations' durable state between runs (``--state-dir``): one SQLite file.

Each station's :meth:`fleet.model.station.Station.snapshot` is saved at the end of a run
and loaded when the station next starts (keyed by station id), so a run continues where
the last one stopped: energy registers, configuration, local lists, charging profiles,
and the transactions and queued transaction messages the CSMS has not seen the end of
(an interrupted transaction is then reported with reason PowerLoss after the boot).

One file (``stations.sqlite3``) in WAL mode for every process of a run: with
``--processes`` each worker writes only its own stations (station ids are unique in the
run), all of them in one transaction at the end, and SQLite serialises the writers
(``busy_timeout``), so no lock or file of our own is needed. The snapshot is stored as
JSON text (plain data, versioned by ``fleet.model.durable.FORMAT``) beside the energy
register and the number of unfinished transactions, which a user can query with the
``sqlite3`` shell.

Used from one thread (the fleet's loop thread): the connection is made there, lazily.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILE_NAME = "stations.sqlite3"
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    identity TEXT PRIMARY KEY,
    saved_at REAL NOT NULL,
    energy_wh REAL NOT NULL,
    open_transactions INTEGER NOT NULL,
    state TEXT NOT NULL
)
"""


class StateStore:
    """Saved station states in ``directory``/stations.sqlite3 (made if missing)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / FILE_NAME
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, fast
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def load(self, identity: str) -> dict[str, Any] | None:
        """The station's saved state, or None if it has none."""
        row = (
            self._connection()
            .execute("SELECT state FROM stations WHERE identity = ?", (identity,))
            .fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

    def save(self, snapshots: Iterable[tuple[dict[str, Any], int]]) -> int:
        """Save (snapshot, unfinished transactions) pairs in one transaction; returns
        how many."""
        rows = [
            (s["identity"], s["saved_at"], s["energy_wh"], unfinished, json.dumps(s))
            for s, unfinished in snapshots
        ]
        db = self._connection()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO stations "
                "(identity, saved_at, energy_wh, open_transactions, state) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
