"""The embedded reference CSMS follows the profile the Locust web UI's form picks.

``fleet run --web`` starts the embedded CSMS with the first profile's id tags and Basic
auth key, but the form may start the next run with another profile. Only the Locust
child knows the form's value, and the CSMS lives here, in the CLI's process: the child
tells it over a loopback socket (this module's :class:`ProfileFollower`; the child's
end is :mod:`fleet.locust.embedded`) before the first station of that run starts, and
waits for the answer, so no station ever meets a CSMS configured for another profile.

One line each way: ``<token> <profile path>\\n`` and ``ok\\n`` or ``error <reason>\\n``.
The token (a random secret passed in the child's environment) keeps any other local
process from reconfiguring the CSMS.
"""

from __future__ import annotations

import hmac
import secrets
import socket
import threading
from typing import Any

from fleet.cli.prerun import auth_for, tag_options
from fleet.scenarios.profile import Profile, ProfileError, load

ENV = "FLEET_EMBEDDED_CSMS"
"""The child's environment variable: ``host:port:token`` of the follower."""


def configure(csms: Any, profile: Profile, station_prefix: str = "CP") -> None:
    """The CSMS accepts ``profile``'s stations: its id tags (added to the tags accepted so
    far: a station of the previous run may still send its last StopTransaction; any
    station number, the form sets the fleet's size) and its AuthorizationKey (replacing
    the previous one: a handshake is always of the current run's stations)."""
    reference = csms.csms
    options = tag_options(profile, station_prefix, None)
    accepts, previous = options["accepts_tag"], reference.accepts_tag
    reference.accepts_tag = (
        accepts if previous is None else (lambda tag: accepts(tag) or previous(tag))
    )
    reference.parent_id_tag = options["parent_id_tag"]
    reference.basic_auth = auth_for(profile)


class ProfileFollower:
    """Listens on 127.0.0.1 for the Locust child's profile switches (a daemon thread)."""

    def __init__(self, csms: Any, station_prefix: str = "CP") -> None:
        self.csms = csms
        self.station_prefix = station_prefix
        self.token = secrets.token_hex(16)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(None)
        self.switched: list[str] = []
        threading.Thread(target=self._serve, name="fleet-profile-follower", daemon=True).start()

    def env(self) -> dict[str, str]:
        """What the Locust child needs to reach this follower."""
        host, port = self._sock.getsockname()[:2]
        return {ENV: f"{host}:{port}:{self.token}"}

    def close(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(10)
                try:
                    conn.sendall(self._answer(_read_line(conn)).encode() + b"\n")
                except OSError:
                    continue

    def _answer(self, line: str) -> str:
        token, _, spec = line.partition(" ")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return "error bad token"
        try:
            profile = load(spec)
        except ProfileError as exc:
            return f"error {exc}"
        if profile.security_profile >= 2:
            return (
                f"error profile {profile.name}: SecurityProfile {profile.security_profile} "
                "needs a wss:// CSMS; the embedded CSMS is ws://"
            )
        configure(self.csms, profile, self.station_prefix)
        self.switched.append(profile.name)
        return "ok"


def _read_line(conn: socket.socket, limit: int = 8192) -> str:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()
