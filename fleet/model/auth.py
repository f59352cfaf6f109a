"""Local authorization, sans-I/O: the Local Authorization List, the Authorization Cache,
and the decision a Charge Pro makes when a badge is presented (OCPP 1.6 section 3.5).

Both stores hold ``IdTagInfo`` records (status, expiry, parent id tag) keyed by idTag,
compared case-insensitively as OCPP's IdToken is. The station owns one
:class:`Authorization`; it survives reboots (OCPP: both SHOULD be kept in non-volatile
memory) and is emptied only by SendLocalList / ClearCache and by the guide's
``TriggerBackendConfigurationDataReset``.

Decisions (see :meth:`Authorization.offline` and :meth:`Authorization.pre_authorized`):

* The list takes precedence over the cache, and each is consulted only while its key
  (``LocalAuthListEnabled``, ``AuthorizationCacheEnabled``) is True.
* Online, with ``LocalPreAuthorize``: an idTag the list or cache knows is decided
  locally, without an Authorize.req (valid: start at once, the StartTransaction.conf can
  still invalidate it; Invalid/Blocked/Expired: refused without asking). Without
  ``LocalPreAuthorize`` every idTag goes to the CSMS, whose answer is followed.
* Offline: a locally known idTag that is not valid is refused (3.5.3: such entries MUST
  be rejected); a valid one starts when ``LocalAuthorizeOffline``; anything else (unknown,
  or known but ``LocalAuthorizeOffline`` False so the stores are not used) starts only
  with ``AllowOfflineTxForUnknownId``.
* "Valid" is status Accepted or ConcurrentTx (3.5.2 maps both to "valid") and not past
  its ``expiryDate``; an entry past it reads as Expired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fleet.model.config import ConfigStore

__all__ = [
    "ACCEPTED",
    "CACHE_CAPACITY",
    "AuthCache",
    "Authorization",
    "IdTagInfo",
    "LocalList",
    "UpdateStatus",
    "parse_time",
]

ACCEPTED = "Accepted"
INVALID = "Invalid"
EXPIRED = "Expired"
VALID_STATUSES = frozenset({ACCEPTED, "ConcurrentTx"})

CACHE_CAPACITY = 1000
"""Entries the Authorization Cache holds. OCPP 1.6 has no key for it and the guide gives
no size; a thousand badges is far more than one home or workplace unit sees."""

UpdateStatus = Literal["Accepted", "Failed", "NotSupported", "VersionMismatch"]


def parse_time(text: str) -> float:
    """OCPP dateTime (RFC 3339) to Unix seconds; a time without an offset is UTC.

    Raises ValueError for text that is not a date and time.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _key(id_tag: str) -> str:
    return id_tag.casefold()


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    """OCPP's IdTagInfo: what a list entry, the cache or the CSMS says about an idTag."""

    status: str
    expiry: float | None = None
    parent_id_tag: str | None = None

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> IdTagInfo:
        """From the wire form (``status``, ``expiryDate``, ``parentIdTag``).

        Raises ValueError for an unreadable ``expiryDate``.
        """
        expiry = payload.get("expiryDate")
        return cls(
            str(payload["status"]),
            None if expiry is None else parse_time(str(expiry)),
            payload.get("parentIdTag"),
        )

    def status_at(self, now: float) -> str:
        """The status as of ``now``: a valid entry past its expiryDate is Expired."""
        if self.expiry is not None and now >= self.expiry and self.status in VALID_STATUSES:
            return EXPIRED
        return self.status

    def valid(self, now: float) -> bool:
        return self.status_at(now) in VALID_STATUSES

    def decision(self, now: float) -> IdTagInfo:
        """What a local decision on this entry amounts to: Accepted (with the parent) when
        valid, else the entry's status as of now."""
        status = ACCEPTED if self.valid(now) else self.status_at(now)
        return IdTagInfo(status, None, self.parent_id_tag)


class LocalList:
    """The Local Authorization List (SendLocalList / GetLocalListVersion, 5.10 and 5.15)."""

    __slots__ = ("_entries", "version")

    def __init__(self) -> None:
        # 0 until the CSMS sends a list: GetLocalListVersion's "empty" value. -1 ("not
        # supported") never occurs: the Charge Pro has the LocalAuthListManagement profile.
        self.version = 0
        self._entries: dict[str, tuple[str, IdTagInfo]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, id_tag: str) -> bool:
        return _key(id_tag) in self._entries

    def get(self, id_tag: str) -> IdTagInfo | None:
        entry = self._entries.get(_key(id_tag))
        return None if entry is None else entry[1]

    def tags(self) -> list[str]:
        """The idTags in the list, as the CSMS spelled them."""
        return [tag for tag, _ in self._entries.values()]

    def items(self) -> list[tuple[str, IdTagInfo]]:
        """(idTag as the CSMS spelled it, its entry), for the durable state."""
        return list(self._entries.values())

    def load(self, version: int, entries: list[tuple[str, IdTagInfo]]) -> None:
        """The list as :meth:`items` gave it (fleet.model.durable)."""
        self.version = version
        self._entries = {_key(tag): (tag, info) for tag, info in entries}

    def clear(self) -> None:
        """Back to the state of a unit that never received a list (version 0)."""
        self.version = 0
        self._entries = {}

    def update(self, payload: Mapping[str, Any], max_length: int, max_send: int) -> UpdateStatus:
        """Apply a SendLocalList.req; all or nothing.

        * More entries than ``SendLocalListMaxLength``, a duplicate idTag, an entry of a
          Full update without idTagInfo (OCPP: required for Full), an unreadable
          expiryDate, or a result longer than ``LocalAuthListMaxLength``: Failed, and the
          list is unchanged.
        * Differential with a listVersion not above the current one: VersionMismatch.
        * Otherwise Accepted, and the list takes the version the CSMS sent (5.15: the
          version "the Charge Point MUST associate with the list after it has been
          updated"), also for a Full update that empties it. Versions 0 and -1 mean
          "empty" and "not supported" in GetLocalListVersion.conf, so a Full update
          that leaves entries must carry a version of at least 1.
        """
        update_type = payload["updateType"]
        version = int(payload["listVersion"])
        items: Sequence[Mapping[str, Any]] = payload.get("localAuthorizationList") or ()
        if len(items) > max_send:
            return "Failed"
        keys = [_key(str(item["idTag"])) for item in items]
        if len(set(keys)) != len(keys):
            return "Failed"
        if update_type == "Differential" and version <= self.version:
            return "VersionMismatch"
        parsed: list[tuple[str, str, IdTagInfo | None]] = []
        try:
            for key, item in zip(keys, items, strict=True):
                info = item.get("idTagInfo")
                parsed.append(
                    (key, str(item["idTag"]), None if info is None else IdTagInfo.parse(info))
                )
        except ValueError:
            return "Failed"
        if update_type == "Full":
            if any(info is None for _, _, info in parsed) or version < 0:
                return "Failed"
            entries = {key: (tag, info) for key, tag, info in parsed if info is not None}
            if entries and version < 1:
                return "Failed"
        else:
            entries = dict(self._entries)
            for key, tag, info in parsed:
                if info is None:
                    entries.pop(key, None)  # no idTagInfo in a Differential: remove it
                else:
                    entries[key] = (tag, info)
        if len(entries) > max_length:
            return "Failed"
        self._entries = entries
        self.version = version
        return "Accepted"


class AuthCache:
    """The Authorization Cache (3.5.1): the latest IdTagInfo the CSMS gave per idTag.

    When full, the entry to drop is the oldest one that is no longer valid, else the
    oldest one ("least recently updated").
    """

    __slots__ = ("_entries", "capacity")

    def __init__(self, capacity: int = CACHE_CAPACITY) -> None:
        self.capacity = capacity
        # A plain dict keeps insertion order and costs half an empty OrderedDict: every
        # simulated station has a cache, most never use it.
        self._entries: dict[str, IdTagInfo] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, id_tag: str) -> IdTagInfo | None:
        return self._entries.get(_key(id_tag))

    def items(self) -> list[tuple[str, IdTagInfo]]:
        """(idTag, entry), oldest first: put() in this order rebuilds the cache."""
        return list(self._entries.items())

    def put(self, id_tag: str, info: IdTagInfo, now: float) -> None:
        key = _key(id_tag)
        self._entries.pop(key, None)
        self._entries[key] = info  # now the newest
        while len(self._entries) > self.capacity:
            victim = next(
                (k for k, v in self._entries.items() if not v.valid(now)),
                next(iter(self._entries)),
            )
            del self._entries[victim]

    def clear(self) -> None:
        self._entries.clear()


class Authorization:
    """The list, the cache, and the rules that combine them with the configuration."""

    __slots__ = ("cache", "local_list")

    def __init__(self) -> None:
        self.local_list = LocalList()
        self.cache = AuthCache()

    def lookup(self, id_tag: str, config: ConfigStore) -> IdTagInfo | None:
        """What the enabled local stores know of ``id_tag``: the list first, then the cache."""
        if config.get_bool("LocalAuthListEnabled"):
            info = self.local_list.get(id_tag)
            if info is not None:
                return info
        if config.get_bool("AuthorizationCacheEnabled"):
            return self.cache.get(id_tag)
        return None

    def listed(self, id_tag: str, config: ConfigStore) -> IdTagInfo | None:
        """The list's entry for ``id_tag`` while the list is in use."""
        if not config.get_bool("LocalAuthListEnabled"):
            return None
        return self.local_list.get(id_tag)

    def pre_authorized(self, id_tag: str, now: float, config: ConfigStore) -> IdTagInfo | None:
        """Online: the local decision under ``LocalPreAuthorize``, or None to ask the CSMS."""
        if not config.get_bool("LocalPreAuthorize"):
            return None
        info = self.lookup(id_tag, config)
        return None if info is None else info.decision(now)

    def offline(self, id_tag: str, now: float, config: ConfigStore) -> IdTagInfo:
        """Offline: the local decision (see the module docstring)."""
        info = self.lookup(id_tag, config)
        if info is not None:
            decided = info.decision(now)
            if decided.status != ACCEPTED:
                return decided
            if config.get_bool("LocalAuthorizeOffline"):
                return decided
        if config.get_bool("AllowOfflineTxForUnknownId"):
            return IdTagInfo(ACCEPTED, None, None if info is None else info.parent_id_tag)
        return IdTagInfo(INVALID)

    def learn(self, id_tag: str, info: IdTagInfo, now: float, config: ConfigStore) -> bool:
        """An IdTagInfo came from the CSMS (Authorize, StartTransaction, StopTransaction.conf).

        Updates the cache (when enabled, and only for idTags not in the list in use, as
        4.1 / 4.8 / 4.10 say), and returns True when it conflicts with the list entry:
        a different status, Accepted and ConcurrentTx counting as the same.
        """
        listed = self.listed(id_tag, config)
        if listed is None:
            if config.get_bool("AuthorizationCacheEnabled"):
                self.cache.put(id_tag, info, now)
            return False
        return _normal(listed.status_at(now)) != _normal(info.status)


def _normal(status: str) -> str:
    return ACCEPTED if status in VALID_STATUSES else status
