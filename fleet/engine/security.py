"""Security profiles on the station side: TLS contexts and HTTP Basic credentials.

OCPP 1.6 security whitepaper (edition 2), as the Charge Pro's vendor keys drive it:

=========  ==========================================  ============================
profile    transport                                   station authentication
=========  ==========================================  ============================
0          ws:// (or wss:// if the URL says so)        none
1          ws:// (or wss:// if the URL says so)        HTTP Basic: BoxIdentifier /
                                                       AuthorizationKey
2          wss:// only, server certificate verified    HTTP Basic, as profile 1
3          wss:// only, server certificate verified    client certificate (mutual
                                                       TLS), no Basic auth
=========  ==========================================  ============================

Everything here runs once per *connection*, never per message. The expensive part, an
``ssl.SSLContext`` (it parses the CA store and the client certificate), is built once
per distinct setting and cached on the fleet's :class:`Security`: one context for
every server-only TLS connection, plus one per client certificate file.

Secrets (``AuthorizationKey``, URL passwords, private keys) never reach a log line or
an exception message from this module: errors name the key or the file, not the value.
"""

from __future__ import annotations

import logging
import os
import ssl
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from websockets.headers import build_authorization_basic
from websockets.uri import WebSocketURI

__all__ = [
    "ID_PLACEHOLDER",
    "Connection",
    "RedactingLogger",
    "Secret",
    "Security",
    "SecurityConfigError",
    "TlsSettings",
    "redact_url",
    "split_userinfo",
    "tls_reason",
]

log = logging.getLogger("fleet.security")

ID_PLACEHOLDER = "{id}"
"""In a client certificate or key path: replaced by the station id (one file per station)."""

_REDACTED = "[redacted]"
_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization"})


class SecurityConfigError(ValueError):
    """A security setting that cannot work; the message is one line and holds no secret."""


class Secret(str):
    """A string whose ``repr`` hides it (profiles, config overrides, tracebacks).

    It still *is* the value: ``==``, ``len``, ``encode`` and formatting see the real
    text, so it flows through the config store to the Authorization header unchanged.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"'{_REDACTED}'"


# -- URLs -----------------------------------------------------------------------------


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``ws://user:pw@host/p`` -> (``ws://host/p``, (user, pw)); other URLs unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, (unquote(user), unquote(password))


def redact_url(url: str) -> str:
    """The URL with any password replaced, for log lines and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}:{_REDACTED}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# -- logging --------------------------------------------------------------------------


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for websockets' protocol objects that never prints credentials.

    With DEBUG on, websockets logs every handshake header (``> Authorization: Basic
    ...`` on the client, ``< Authorization: ...`` on the server). Both go through
    ``logger.debug("%s %s: %s", ...)``-style calls with the header name as an argument,
    which is where the value is replaced.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in _SENSITIVE_HEADERS:
            args = (args[0], _REDACTED)
        kwargs.setdefault("stacklevel", 2)  # the record names websockets' line, not this one
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs


CLIENT_LOGGER = RedactingLogger(logging.getLogger("websockets.client"))
SERVER_LOGGER = RedactingLogger(logging.getLogger("websockets.server"))


# -- fleet-wide TLS settings ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How the fleet's stations do TLS; the same for every station of a run.

    ``ca_file``: a PEM file (one CA or a bundle) or a directory of hashed CA files that
    replaces the system trust store; None means the system store. ``client_cert`` /
    ``client_key``: the certificate a profile 3 station presents (PEM; the key may sit
    in the certificate file). Either path may contain ``{id}``, replaced by the station
    id, for one certificate per station. ``insecure``: do not verify the CSMS's
    certificate at all (an explicit opt-out; the run warns).
    """

    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False

    @property
    def per_station(self) -> bool:
        return any(ID_PLACEHOLDER in (p or "") for p in (self.client_cert, self.client_key))

    def check(self) -> None:
        """Fail now, in one line, on settings that could never work (CLI, Locust init).

        Loads the CA store and, unless it is per station, the client certificate.
        """
        if self.insecure and self.ca_file:
            raise SecurityConfigError(
                "insecure (no certificate verification) and a CA file contradict each other"
            )
        if self.client_key and not self.client_cert:
            raise SecurityConfigError("a client key needs a client certificate")
        for name, path in (
            ("client certificate", self.client_cert),
            ("client key", self.client_key),
        ):
            if path is not None:
                _check_template(name, path)
        if self.ca_file is not None and not os.path.exists(self.ca_file):
            raise SecurityConfigError(f"CA file {self.ca_file}: no such file or directory")
        if self.per_station:
            assert self.client_cert is not None
            folder = os.path.dirname(self.client_cert) or "."
            if not os.path.isdir(folder):
                raise SecurityConfigError(
                    f"client certificate {self.client_cert}: no such directory {folder}"
                )
            build_client_context(self, None)
        else:
            build_client_context(self, self._client_files(""))

    def _client_files(self, identity: str) -> tuple[str, str | None] | None:
        if self.client_cert is None:
            return None
        cert = self.client_cert.replace(ID_PLACEHOLDER, identity)
        key = None if self.client_key is None else self.client_key.replace(ID_PLACEHOLDER, identity)
        return cert, key

    def as_options(self, prefix: str) -> list[str]:
        """The same settings as command-line options (``fleet run`` -> Locust)."""
        out: list[str] = []
        if self.ca_file:
            out += [f"--{prefix}ca-file", self.ca_file]
        if self.client_cert:
            out += [f"--{prefix}client-cert", self.client_cert]
        if self.client_key:
            out += [f"--{prefix}client-key", self.client_key]
        if self.insecure:
            out.append(f"--{prefix}insecure")
        return out


def _check_template(name: str, path: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(path) if f is not None]
    except ValueError as exc:
        raise SecurityConfigError(f"{name} {path}: {exc}") from None
    if any(f != "id" for f in fields):
        raise SecurityConfigError(f"{name} {path}: the only placeholder is {ID_PLACEHOLDER}")


def build_client_context(
    settings: TlsSettings, client: tuple[str, str | None] | None
) -> ssl.SSLContext:
    """A new client-side context: TLS >= 1.2, the CSMS verified unless ``insecure``."""
    try:
        if settings.insecure:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif settings.ca_file is None:
            ctx = ssl.create_default_context()
        elif os.path.isdir(settings.ca_file):
            ctx = ssl.create_default_context(capath=settings.ca_file)
        else:
            ctx = ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(f"CA file {settings.ca_file}: {tls_reason(exc)}") from None
    # The whitepaper asks for TLS 1.2 or later.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client is not None:
        cert, key = client
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            files = cert if key is None else f"{cert} / {key}"
            raise SecurityConfigError(f"client certificate {files}: {tls_reason(exc)}") from None
    return ctx


_SSL_REASONS = {
    "PEM lib": "not a PEM certificate with its private key",
    "NO_CERTIFICATE_OR_CRL_FOUND": "no PEM certificate in it",
    "KEY_VALUES_MISMATCH": "the key does not match the certificate",
}


def tls_reason(exc: BaseException) -> str:
    """A short, secret-free reason for a failure to load a certificate, key or CA."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason
        if reason is None:  # load_cert_chain's errors carry the text only
            reason = "PEM lib" if "PEM lib" in str(exc) else str(exc)
        return _SSL_REASONS.get(reason, reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


# -- per-fleet state: the context cache ------------------------------------------------

Connection = tuple[ssl.SSLContext | None, str | None]
"""What one connection attempt needs: the TLS context (None: plain TCP) and the value
of the Authorization header (None: no header)."""


class Security:
    """The fleet's TLS settings and its cache of SSL contexts (lives on the loop thread)."""

    def __init__(
        self, settings: TlsSettings | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.settings = settings if settings is not None else TlsSettings()
        self.override = ssl_context
        self._contexts: dict[tuple[str, str | None] | None, ssl.SSLContext] = {}
        self._warned: set[str] = set()
        if self.settings.insecure and ssl_context is None:
            log.warning(
                "TLS certificate verification is OFF (insecure): any server can pose as the CSMS"
            )

    @property
    def contexts_built(self) -> int:
        return len(self._contexts)

    def context(self, client: tuple[str, str | None] | None) -> ssl.SSLContext:
        ctx = self._contexts.get(client)
        if ctx is None:
            ctx = self._contexts[client] = build_client_context(self.settings, client)
        return ctx

    def prepare(
        self,
        uri: WebSocketURI,
        identity: str,
        config: Any,
        userinfo: tuple[str, str] | None = None,
    ) -> Connection:
        """TLS context and Authorization header for one connection of a station.

        ``identity`` names the station's certificate files; ``config`` is its
        ConfigStore (SecurityProfile, AuthorizationKey, BoxIdentifier); ``userinfo`` is
        what the fleet's base URL carried, used only at profile 0.
        Raises SecurityConfigError when the settings cannot work at all.
        """
        profile = config.get_int("SecurityProfile")
        if profile >= 2 and not uri.secure:
            raise SecurityConfigError(
                f"SecurityProfile {profile} needs a wss:// URL, "
                f"SupervisionUrl is {redact_url(config.get('SupervisionUrl'))}"
            )
        auth: str | None = None
        if profile in (1, 2):
            key = config.get("AuthorizationKey")
            if not key:
                raise SecurityConfigError(f"SecurityProfile {profile} needs an AuthorizationKey")
            user = config.get("BoxIdentifier")
            if ":" in user:
                raise SecurityConfigError(
                    f"BoxIdentifier {user!r} has a ':' and cannot be a Basic auth user"
                )
            auth = build_authorization_basic(user, key)
        elif profile == 0:
            # A URL's user:password, as websockets would send it (never at profile 3,
            # which authenticates with the certificate alone).
            userinfo = uri.user_info or userinfo
            if userinfo is not None and ":" not in userinfo[0]:
                auth = build_authorization_basic(*userinfo)
        if not uri.secure:
            return None, auth
        if self.override is not None:
            return self.override, auth
        client = None
        if profile == 3:
            client = self.settings._client_files(identity)
            if client is None:
                raise SecurityConfigError(
                    "SecurityProfile 3 needs a client certificate (--client-cert)"
                )
        return self.context(client), auth

    def warn_once(self, message: str) -> None:
        """Log a fleet-wide configuration problem once, not once per station."""
        if message not in self._warned:
            self._warned.add(message)
            log.error("%s", message)
