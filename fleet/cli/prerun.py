"""What every command that runs stations does before they start: the checks (profile,
station prefix, TLS files, what the security profile needs, open files, the CSMS
reachable and its certificate verifying), each mistake one line and exit 2; and the
start-up of the embedded reference CSMS when no ``--csms`` is given."""

from __future__ import annotations

import hmac
import os
import re
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import click

from fleet.cli.options import UsageProblem
from fleet.engine.limits import stations_problem
from fleet.engine.security import (
    SecurityConfigError,
    TlsSettings,
    build_client_context,
    redact_url,
)
from fleet.scenarios.profile import Profile, ProfileError, load


def check_csms_url(url: str, timeout: float = 3.0, tls: TlsSettings | None = None) -> None:
    """Fail early, in one line, when the CSMS URL is malformed or nothing listens there.

    For wss:// with ``tls``, also check that the CSMS's certificate verifies.
    """
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageProblem(f"--csms: {shown!r} is not a ws:// or wss:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        raise UsageProblem(f"--csms: {shown!r} has an invalid port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout) as sock:
            if parts.scheme == "wss" and tls is not None and not tls.insecure:
                _check_certificate(sock, parts.hostname, port, tls)
    except TimeoutError:
        raise UsageProblem(
            f"--csms: cannot reach {parts.hostname}:{port} (no answer within {timeout:g} s)"
        ) from None
    except OSError as exc:
        reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
        raise UsageProblem(f"--csms: cannot reach {parts.hostname}:{port} ({reason})") from None


def _check_certificate(sock: socket.socket, host: str, port: int, tls: TlsSettings) -> None:
    """A TLS handshake without a client certificate: only verification errors count here
    (a CSMS that wants a client certificate is the stations' business)."""
    try:
        context = build_client_context(tls, None)
        with context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise UsageProblem(
            f"--csms: the TLS certificate of {host}:{port} does not verify "
            f"({exc.verify_message}); give its CA with --ca-file"
        ) from None
    except (ssl.SSLError, SecurityConfigError, OSError):
        pass


def checked_setup(
    profile_name: str, station_prefix: str, csms_url: str | None, tls: TlsSettings
) -> Profile:
    """What every command that runs stations checks before anything starts: the
    profile, the station prefix, the TLS files and what the security profile needs.
    Each mistake is one line; turning verification off is always a warning."""
    try:
        profile = load(profile_name)
    except ProfileError as exc:
        raise UsageProblem(str(exc)) from None
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,16}", station_prefix):
        raise UsageProblem("--station-prefix: 1..16 letters, digits, '.', '_' or '-'")
    try:
        tls.check()
    except SecurityConfigError as exc:
        raise UsageProblem(f"TLS: {exc}") from None
    security_profile = profile.security_profile
    if security_profile >= 2 and not (csms_url or "").lower().startswith("wss://"):
        raise UsageProblem(
            f"profile {profile.name}: SecurityProfile {security_profile} needs a wss:// CSMS "
            "(--csms wss://...)"
        )
    if security_profile == 3 and not tls.client_cert:
        raise UsageProblem(
            f"profile {profile.name}: SecurityProfile 3 needs a client certificate (--client-cert)"
        )
    if tls.insecure:
        click.echo(
            "fleet: WARNING: TLS certificate verification is off (--insecure): "
            "any server can pose as the CSMS",
            err=True,
        )
    return profile


def check_open_files(stations: int, embedded: bool) -> None:
    """Stations (and, embedded, the CSMS's side of each connection) need open files: the
    limit is raised here, and a fleet that would still not fit stops before it starts
    (the Locust child inherits the raised limit)."""
    problem = stations_problem(
        stations,
        2 if embedded else 1,
        " (two per station with the embedded CSMS)" if embedded else "",
    )
    if problem is not None:
        raise UsageProblem(problem)


def open_csms(
    profile: Profile,
    csms_url: str | None,
    tls: TlsSettings,
    station_prefix: str = "CP",
    stations: int | None = None,
    **options: Any,
) -> tuple[Any, str]:
    """The CSMS the stations connect to: the one at ``csms_url`` (checked reachable), or
    an embedded reference CSMS (``options`` go to it) that accepts the profile's tags of
    the run's stations (``station_prefix``, numbers 1..``stations``; None: any) and its
    Basic auth key. Returns the embedded CSMS (None otherwise) and the URL."""
    if csms_url is not None:
        check_csms_url(csms_url, tls=tls)
        return None, csms_url
    from fleet.csms.server import CsmsThread

    csms = CsmsThread(
        basic_auth=auth_for(profile),
        **tag_options(profile, station_prefix, stations),
        **options,
    )
    url = csms.start()
    click.echo(f"fleet: embedded reference CSMS at {url}", err=True)
    return csms, url


def auth_for(profile: Profile) -> Any:
    """The embedded CSMS's Basic auth check for ``profile``'s stations (None: no auth)."""
    key = profile.config.get("AuthorizationKey") if profile.security_profile == 1 else None
    return None if key is None else password_check(str(key))


def tag_options(profile: Profile, station_prefix: str, stations: int | None) -> dict[str, Any]:
    """What the reference CSMS needs to accept exactly the profile's idTags of a run's
    stations (``fleet profiles tags`` lists the same ones) and answer their group."""
    tags = profile.id_tags

    def accepts(id_tag: str) -> bool:
        return tags.accepts(id_tag, station_prefix, stations)

    return {"accepts_tag": accepts, "parent_id_tag": tags.parent}


def password_check(key: str) -> Any:
    """A Basic auth predicate for the reference CSMS: every station has this password."""
    expected = key.encode("utf-8", "surrogateescape")

    def check(station_id: str, password: str) -> bool:
        return hmac.compare_digest(password.encode("utf-8", "surrogateescape"), expected)

    return check
