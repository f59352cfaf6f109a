"""Fleet profiles (``profiles/*.yaml``): loading and validation.

A profile describes one fleet: the station model and its configuration overrides,
the id tags drivers badge with, the EVs they drive, and how sessions go. It is
checked completely on load, so a mistake stops the run before it starts, with one
line naming the file, the line and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import yaml

from fleet.engine.fleet import CLOCKS
from fleet.engine.security import Secret
from fleet.model.config import KEYS, ConfigError, ConfigStore
from fleet.model.messages import Reason
from fleet.model.meter import EvModel
from fleet.protocol.rpc import MESSAGE_IDS
from fleet.scenarios import misbehave, network, power, replay, storms

# A user's own profiles (./profiles) first, then the built-in ones: package data
# (fleet/profiles, in the wheel too; the checkout's top-level profiles/ links to them).
PROFILE_DIRS = (Path.cwd() / "profiles", Path(str(resources.files("fleet") / "profiles")))
BEHAVIOURS = ("sessions", "idle")
SOURCES = ("random", "synthetic", "trace")
SHAPES = ("ramp", "steps", "boot-storm")


class ProfileError(ValueError):
    """A one-line, user-facing description of what is wrong in a profile."""


Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class EvType:
    name: str
    weight: float
    battery_kwh: float
    max_current: float
    phases: int
    soc: Range

    def build(self, rng: Any) -> EvModel:
        return EvModel(
            battery_wh=self.battery_kwh * 1000.0,
            max_current=self.max_current,
            phases=self.phases,
            soc=rng.uniform(*self.soc),
        )


ID_TAG_MAX = 20  # OCPP 1.6 IdToken: CiString20Type


def station_id(prefix: str, number: int) -> str:
    """The id of a run's ``number``-th station (1-based): ``CP00042``, as
    fleet.locust.bridge names them."""
    return f"{prefix}{number:05d}"


def station_tag(identity: str, k: int = 1) -> str:
    """A station's ``k``-th own badge: ``CP00042-T1``. A station id too long for the 20
    characters of an idTag loses its first characters: the stations of a run share their
    prefix and differ in their numbers, at the end, so their tags stay distinct."""
    suffix = f"-T{k}"
    return identity[-(ID_TAG_MAX - len(suffix)) :] + suffix


_STATION_TAG = re.compile(r"(.*)-T([1-9][0-9]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class IdTags:
    """``id_tags``: the badges drivers present. By default each station has its own
    (``per_station`` of them, :func:`station_tag`), so a CSMS that allows one
    transaction per idTag never sees two stations badge with the same one; ``shared``
    is a pool every station draws from at random (an explicit choice: two stations
    may then badge the same tag at once, which such a CSMS answers ConcurrentTx).
    ``parent``: the parentIdTag (group) of every tag, for the CSMS to provision."""

    per_station: int = 1
    shared: tuple[str, ...] = ()
    parent: str | None = None

    def for_station(self, identity: str) -> tuple[str, ...]:
        """The tags drivers at this station badge with."""
        if self.shared:
            return self.shared
        return tuple(station_tag(identity, k) for k in range(1, self.per_station + 1))

    def listing(self, identities: Iterable[str]) -> list[tuple[str, str, str]]:
        """(station id, idTag, parent idTag or "") for a CSMS to provision: a shared
        pool once, with no station (any station badges any of them)."""
        parent = self.parent or ""
        if self.shared:
            return [("", tag, parent) for tag in self.shared]
        return [(sid, tag, parent) for sid in identities for tag in self.for_station(sid)]

    def accepts(self, id_tag: str, prefix: str, stations: int | None = None) -> bool:
        """Whether ``id_tag`` is one of these tags in a run whose station ids are
        ``{prefix}{number:05d}`` (numbers 1..``stations``; None: any): what the
        embedded reference CSMS accepts. Case-insensitive, as IdToken is."""
        wanted = id_tag.casefold()
        if self.shared:
            return any(tag.casefold() == wanted for tag in self.shared)
        match = _STATION_TAG.fullmatch(id_tag)
        if match is None or int(match[2]) > self.per_station:
            return False
        body, k = match[1], int(match[2])
        digits = len(body) - len(body.rstrip("0123456789"))
        for width in range(1, digits + 1):  # which trailing digits are the number
            number = int(body[-width:])
            if number < 1 or (stations is not None and number > stations):
                continue
            if station_tag(station_id(prefix, number), k).casefold() == wanted:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Sessions:
    """Self-started sessions (behaviour ``sessions``); times in seconds, uniform ranges."""

    first_after: Range = (2.0, 10.0)
    badge_after_plug: Range = (1.0, 3.0)
    duration: Range = (60.0, 120.0)
    unplug_after_stop: Range = (2.0, 6.0)
    idle_between: Range = (10.0, 30.0)
    stop_by_badge: float = 0.5  # share of sessions the driver ends by badging (else unplugs)
    # Where sessions come from: ``random`` (the ranges above, back to back), ``synthetic``
    # (replay.generate over hourly arrival rates) or ``trace`` (a CSV/JSON file).
    source: str = "random"
    synthetic: replay.Synthetic | None = None
    trace: replay.Trace | None = None
    time_compression: float = 1.0  # model clock speed (144: a day in ten minutes)
    # Protocol timer -> "real" or "model": the clock it runs on (fleet.engine.fleet.CLOCKS)
    clocks: dict[str, str] = field(default_factory=lambda: dict(CLOCKS))


@dataclass(frozen=True, slots=True)
class Kind:
    """``kinds``: a sort of station, its overrides merged over ``station``."""

    name: str
    weight: float
    count: int | None
    model: str
    firmware: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Load:
    """``load``: how many stations over time (see fleet.locust.shapes)."""

    shape: str
    stations: int
    spawn_rate: float = 10.0  # stations per second when ramping or stepping
    over: float = 60.0  # ramp: seconds to reach ``stations``
    step: int = 10  # steps: stations added per step
    every: float = 60.0  # steps: seconds between steps
    outage_at: float = 60.0  # boot-storm: when the grid goes down
    outage: float = 30.0  # boot-storm: how long it stays down
    hold: float | None = None  # seconds to keep going after the shape is done (None: forever)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    path: Path
    description: str
    behaviour: str
    model: str
    config: dict[str, Any]
    id_tags: IdTags
    evs: tuple[EvType, ...]
    sessions: Sessions
    plug_after_remote_start: Range = (1.0, 5.0)
    unplug_after_remote_stop: Range = (2.0, 6.0)
    firmware: str = "3.0.0"
    reboot_seconds: float = 10.0
    reject_number_phases: bool = False
    reset_close_delay: float = 1.0  # answered Reset.req -> link closed (issue 17)
    end_reason: str = "Local"  # StopTransaction reason at the end of a run
    message_ids: str = "unique"  # fleet.protocol.rpc.MESSAGE_IDS
    faults: Any = None  # storms.parse(): fault storms, or None
    power: Any = None  # power.parse(): grid outages, or None
    network: Any = None  # network.parse(): offline waves and buffering, or None
    misbehave: Any = None  # misbehave.parse(): the misbehaving-station mode, or None
    kinds: tuple[Kind, ...] = ()
    load: Load | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def time_compression(self) -> float:
        return self.sessions.time_compression

    def kind_for(self, number: int) -> Kind | None:
        """The kind of the ``number``-th station (1-based): kinds with a ``count`` take
        the first stations in order, the rest go by weight in a smooth round robin
        (deterministic: the same for every run)."""
        if not self.kinds:
            return None
        i = number
        for kind in self.kinds:
            if kind.count is not None:
                if i <= kind.count:
                    return kind
                i -= kind.count
        weighted = [k for k in self.kinds if k.count is None and k.weight > 0]
        if not weighted:
            return self.kinds[-1]
        total = sum(k.weight for k in weighted)
        # A low-discrepancy sequence (golden ratio): shares close to the weights at any
        # fleet size, the same for every run.
        u = (i * 0.6180339887498949) % 1.0 * total
        for kind in weighted:
            u -= kind.weight
            if u < 0:
                return kind
        return weighted[-1]

    def station_setup(self, number: int) -> tuple[str, str, dict[str, Any]]:
        """(model, firmware, config) of the ``number``-th station."""
        kind = self.kind_for(number)
        if kind is None:
            return self.model, self.firmware, self.config
        return kind.model, kind.firmware, kind.config

    def ev_named(self, name: str) -> EvType:
        return next(e for e in self.evs if e.name == name)

    @property
    def security_profile(self) -> int:
        """The stations' SecurityProfile (0..3)."""
        return int(self.config.get("SecurityProfile", 0))

    def pick_ev(self, rng: Any) -> EvModel:
        ev = rng.choices(self.evs, weights=[e.weight for e in self.evs])[0]
        built: EvModel = ev.build(rng)
        return built


def find(name_or_path: str) -> Path:
    """Resolve a profile name (``demo``) or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ProfileError(f"{name_or_path}: no such profile file")
        return candidate
    for folder in PROFILE_DIRS:
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    names = ", ".join(sorted(p.stem for p in available()))
    raise ProfileError(f"unknown profile {name_or_path!r} (available: {names})")


def available() -> list[Path]:
    seen: dict[str, Path] = {}
    for folder in PROFILE_DIRS:
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                seen.setdefault(path.stem, path)
    return list(seen.values())


def load(name_or_path: str) -> Profile:
    """Load and validate a profile; raise ProfileError with one line on any mistake."""
    path = find(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"{path}{where}: invalid YAML: {problem}") from None
    return _Reader(path, root).profile(data)


class _Reader:
    """Validates the parsed YAML, reporting errors with the YAML node's line."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.root = root

    def fail(self, where: str, message: str) -> ProfileError:
        line = self._line(where)
        loc = f"{self.path}:{line}" if line else str(self.path)
        return ProfileError(f"{loc}: {where}: {message}")

    def _line(self, where: str) -> int | None:
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in where.split("."):
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == part:
                        line = key.start_mark.line + 1
                        node = value
                        break
                else:
                    return line
            elif (
                isinstance(node, yaml.SequenceNode)
                and part.isdigit()
                and int(part) < len(node.value)
            ):
                node = node.value[int(part)]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{where}.{key}" if where else str(key),
                    f"unknown field (expected one of: {', '.join(sorted(allowed))})",
                )
        return value

    def choice(self, value: Any, where: str, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.fail(where, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    def number(
        self, value: Any, where: str, minimum: float = 0.0, maximum: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"{minimum:g}..{maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise self.fail(where, f"must be {bound}, got {value!r}")
        return float(value)

    def range(self, value: Any, where: str, default: Range, maximum: float | None = None) -> Range:
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            v = self.number(value, where, 0.0, maximum)
            return (v, v)
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(where, f"expected a number or [min, max], got {value!r}")
        lo = self.number(value[0], where, 0.0, maximum)
        hi = self.number(value[1], where, 0.0, maximum)
        if lo > hi:
            raise self.fail(where, f"min {lo:g} is above max {hi:g}")
        return (lo, hi)

    def profile(self, data: Any) -> Profile:
        top = self.mapping(
            data,
            "",
            {
                "name",
                "description",
                "behaviour",
                "station",
                "id_tags",
                "evs",
                "sessions",
                "remote_start",
                "faults",
                "power",
                "network",
                "kinds",
                "load",
                "misbehave",
            },
        )
        behaviour = self.choice(top.get("behaviour", "sessions"), "behaviour", BEHAVIOURS)
        station = self.mapping(
            top.get("station"),
            "station",
            {
                "model",
                "firmware",
                "reboot_seconds",
                "reject_number_phases",
                "reset_close_delay",
                "end_reason",
                "message_ids",
                "config",
                "security",
            },
        )
        message_ids = self.choice(
            station.get("message_ids", "unique"), "station.message_ids", MESSAGE_IDS
        )
        end_reason = str(station.get("end_reason", "Local"))
        if end_reason not in get_args(Reason):
            raise self.fail("station.end_reason", f"must be one of {', '.join(get_args(Reason))}")
        firmware = str(station.get("firmware", "3.0.0"))
        if not 1 <= len(firmware) <= 50:
            raise self.fail("station.firmware", "firmwareVersion is 1..50 characters")
        # The guide marks numberPhases "Parameter not used": ignored by default (many
        # CSMSs always send it); true keeps the guide's "rejected" reading.
        reject_number_phases = station.get("reject_number_phases", False)
        if not isinstance(reject_number_phases, bool):
            raise self.fail("station.reject_number_phases", "expected true or false")
        model = str(station.get("model", "EVB4S22N40M"))
        if len(model) > 20:
            raise self.fail("station.model", "chargePointModel is at most 20 characters")
        config = dict(self.mapping(station.get("config"), "station.config", _config_keys()))
        config.update(self.security(station.get("security"), config))
        try:
            ConfigStore(config)
        except ConfigError as exc:
            key = next((k for k in config if f"'{k}'" in str(exc)), "")
            raise self.fail(
                f"station.config.{key}" if key else "station.config", str(exc)
            ) from None
        evs = self.evs(top.get("evs"))
        return Profile(
            name=str(top.get("name", self.path.stem)),
            path=self.path,
            description=str(top.get("description", "")).strip(),
            behaviour=behaviour,
            model=model,
            config=dict(config),
            id_tags=self.id_tags(top.get("id_tags")),
            evs=evs,
            sessions=self.sessions(top.get("sessions"), evs),
            kinds=self.kinds(top.get("kinds"), model, firmware, config),
            load=self.load(top.get("load")),
            firmware=firmware,
            reboot_seconds=self.number(
                station.get("reboot_seconds", 10.0), "station.reboot_seconds", 0.0, 3600.0
            ),
            reject_number_phases=reject_number_phases,
            reset_close_delay=self.number(
                station.get("reset_close_delay", 1.0), "station.reset_close_delay", 0.0, 60.0
            ),
            end_reason=end_reason,
            message_ids=message_ids,
            faults=storms.parse(self, top.get("faults")),
            power=power.parse(self, top.get("power")),
            network=network.parse(self, top.get("network")),
            misbehave=misbehave.parse(self, top.get("misbehave")),
            plug_after_remote_start=self.range(
                self.mapping(
                    top.get("remote_start"), "remote_start", {"plug_after", "unplug_after"}
                ).get("plug_after"),
                "remote_start.plug_after",
                (1.0, 5.0),
            ),
            unplug_after_remote_stop=self.range(
                (top.get("remote_start") or {}).get("unplug_after"),
                "remote_start.unplug_after",
                (2.0, 6.0),
            ),
        )

    def security(self, value: Any, config: dict[str, Any]) -> dict[str, Any]:
        """``station.security``: the OCPP security profile and the Basic auth password,
        as the config overrides SecurityProfile / AuthorizationKey. Messages name the
        field or the variable, never the key itself."""
        where = "station.security"
        sec = self.mapping(value, where, {"profile", "authorization_key", "authorization_key_env"})
        out: dict[str, Any] = {}
        for field_name, config_key in (
            ("profile", "SecurityProfile"),
            ("authorization_key", "AuthorizationKey"),
            ("authorization_key_env", "AuthorizationKey"),
        ):
            if field_name in sec and config_key in config:
                raise self.fail(
                    f"{where}.{field_name}",
                    f"{config_key} is also set in station.config; keep one",
                )
        if "profile" in sec:
            profile = sec["profile"]
            if isinstance(profile, bool) or profile not in (0, 1, 2, 3):
                raise self.fail(f"{where}.profile", f"must be 0, 1, 2 or 3, got {profile!r}")
            out["SecurityProfile"] = int(profile)
        if "authorization_key" in sec and "authorization_key_env" in sec:
            raise self.fail(
                f"{where}.authorization_key", "give authorization_key or authorization_key_env"
            )
        key: Any = None
        key_where = ""
        if "authorization_key_env" in sec:
            key_where = f"{where}.authorization_key_env"
            name = sec["authorization_key_env"]
            if not isinstance(name, str) or not name:
                raise self.fail(key_where, "expected the name of an environment variable")
            key = os.environ.get(name)
            if not key:
                raise self.fail(key_where, f"environment variable {name} is not set")
        elif "authorization_key" in sec:
            key_where = f"{where}.authorization_key"
            key = sec["authorization_key"]
            if not isinstance(key, str):
                raise self.fail(key_where, f"expected a string, got {type(key).__name__}")
        elif isinstance(config.get("AuthorizationKey"), str):
            key_where, key = "station.config.AuthorizationKey", config["AuthorizationKey"]
        if key is not None:
            minimum = KEYS["AuthorizationKey"].min_bytes or 0
            size = len(key.encode("utf-8", "surrogatepass"))
            if size < minimum:
                raise self.fail(key_where, f"must be at least {minimum} bytes, got {size}")
            out["AuthorizationKey"] = Secret(key)
        profile_now = str(out.get("SecurityProfile", config.get("SecurityProfile", 0)))
        if profile_now in ("1", "2") and key is None:
            raise self.fail(
                f"{where}.profile" if "profile" in sec else where,
                f"SecurityProfile {profile_now} (HTTP Basic auth) needs authorization_key_env "
                "or authorization_key",
            )
        return out

    def id_tags(self, value: Any) -> IdTags:
        """``per-station`` (the default), ``{per_station: N, parent: TAG}``, or a shared
        pool: ``{shared: [TAG, ...]}`` / ``{shared: {prefix: P, count: N}}`` (a bare
        list or ``{prefix, count}`` is a shared pool too)."""
        if value is None or value == "per-station":
            return IdTags()
        if isinstance(value, list):
            return IdTags(shared=self.tag_pool(value, "id_tags"))
        if isinstance(value, str):
            raise self.fail("id_tags", f"expected per-station or a mapping, got {value!r}")
        spec = self.mapping(
            value, "id_tags", {"per_station", "shared", "parent", "prefix", "count"}
        )
        parent = spec.get("parent")
        if parent is not None:
            parent = self.tag(parent, "id_tags.parent")
        pool = spec.get("shared")
        if "prefix" in spec or "count" in spec:
            if pool is not None:
                raise self.fail("id_tags.prefix", "give shared or prefix/count, not both")
            pool = {k: spec[k] for k in ("prefix", "count") if k in spec}
        if pool is not None:
            if "per_station" in spec:
                raise self.fail("id_tags.per_station", "give per_station or shared, not both")
            return IdTags(shared=self.tag_pool(pool, "id_tags.shared"), parent=parent)
        count = int(self.number(spec.get("per_station", 1), "id_tags.per_station", 1, 9))
        return IdTags(per_station=count, parent=parent)

    def tag_pool(self, value: Any, where: str) -> tuple[str, ...]:
        if isinstance(value, list):
            tags = tuple(self.tag(v, f"{where}.{i}") for i, v in enumerate(value))
        else:
            spec = self.mapping(value, where, {"prefix", "count"})
            prefix = str(spec.get("prefix", "FLEET"))
            count = int(self.number(spec.get("count", 200), f"{where}.count", 1, 1_000_000))
            tags = tuple(
                self.tag(f"{prefix}{i:04d}", f"{where}.prefix") for i in range(1, count + 1)
            )
        if not tags:
            raise self.fail(where, "needs at least one id tag")
        return tags

    def tag(self, value: Any, where: str) -> str:
        tag = str(value)
        if not 1 <= len(tag) <= ID_TAG_MAX:
            raise self.fail(where, f"an idTag is 1..20 characters (OCPP IdToken), got {tag!r}")
        return tag

    def evs(self, value: Any) -> tuple[EvType, ...]:
        if value is None:
            return (EvType("default", 1.0, 60.0, 32.0, 3, (0.2, 0.6)),)
        if not isinstance(value, list) or not value:
            raise self.fail("evs", "expected a non-empty list of EV models")
        out = []
        fields = {"name", "weight", "battery_kwh", "max_current", "phases", "soc"}
        for i, raw in enumerate(value):
            where = f"evs.{i}"
            ev = self.mapping(raw, where, fields)
            phases = ev.get("phases", 3)
            if phases not in (1, 2, 3):
                raise self.fail(f"{where}.phases", f"must be 1, 2 or 3, got {phases!r}")
            out.append(
                EvType(
                    name=str(ev.get("name", f"ev{i}")),
                    weight=self.number(ev.get("weight", 1), f"{where}.weight"),
                    battery_kwh=self.number(
                        ev.get("battery_kwh", 60), f"{where}.battery_kwh", 1, 1000
                    ),
                    max_current=self.number(
                        ev.get("max_current", 32), f"{where}.max_current", 1, 80
                    ),
                    phases=int(phases),
                    soc=self.range(ev.get("soc"), f"{where}.soc", (0.2, 0.6), 1.0),
                )
            )
        if sum(e.weight for e in out) <= 0:
            raise self.fail("evs", "at least one EV model needs a positive weight")
        return tuple(out)

    def sessions(self, value: Any, evs: tuple[EvType, ...] = ()) -> Sessions:
        d = Sessions()
        s = self.mapping(
            value,
            "sessions",
            {
                "first_after",
                "badge_after_plug",
                "duration",
                "unplug_after_stop",
                "idle_between",
                "stop_by_badge",
                "source",
                "synthetic",
                "trace",
                "time_compression",
                "clocks",
            },
        )
        source = s.get("source")
        if source is None:
            source = "trace" if "trace" in s else "synthetic" if "synthetic" in s else "random"
        if source not in SOURCES:
            raise self.fail(
                "sessions.source", f"must be one of {', '.join(SOURCES)}, got {source!r}"
            )
        synthetic = self.synthetic(s.get("synthetic")) if "synthetic" in s else None
        if source == "synthetic" and synthetic is None:
            raise self.fail("sessions.source", "source synthetic needs sessions.synthetic")
        trace = None
        if source == "trace":
            if not isinstance(s.get("trace"), str) or not s["trace"]:
                raise self.fail(
                    "sessions.trace" if "trace" in s else "sessions.source",
                    "source trace needs sessions.trace: a CSV or JSON file",
                )
            trace_path = Path(s["trace"])
            if not trace_path.is_absolute():
                trace_path = self.path.parent / trace_path
            try:
                trace = replay.load_trace(trace_path, {e.name for e in evs})
            except replay.TraceError as exc:
                raise self.fail("sessions.trace", str(exc)) from None
        return Sessions(
            source=source,
            synthetic=synthetic,
            trace=trace,
            time_compression=self.number(
                s.get("time_compression", 1), "sessions.time_compression", 0.001, 1e6
            ),
            clocks=self.clocks(s.get("clocks")),
            first_after=self.range(s.get("first_after"), "sessions.first_after", d.first_after),
            badge_after_plug=self.range(
                s.get("badge_after_plug"), "sessions.badge_after_plug", d.badge_after_plug
            ),
            duration=self.range(s.get("duration"), "sessions.duration", d.duration),
            unplug_after_stop=self.range(
                s.get("unplug_after_stop"), "sessions.unplug_after_stop", d.unplug_after_stop
            ),
            idle_between=self.range(s.get("idle_between"), "sessions.idle_between", d.idle_between),
            stop_by_badge=self.number(
                s.get("stop_by_badge", d.stop_by_badge), "sessions.stop_by_badge", 0, 1
            ),
        )

    def clocks(self, value: Any) -> dict[str, str]:
        """``sessions.clocks``: ``{heartbeat|meter_values|ping: real|model}`` over the
        defaults (fleet.engine.fleet.CLOCKS)."""
        clocks = dict(CLOCKS)
        if value is None:
            return clocks
        spec = self.mapping(value, "sessions.clocks", set(CLOCKS))
        for name, clock in spec.items():
            if clock not in ("real", "model"):
                raise self.fail(f"sessions.clocks.{name}", f"real or model, got {clock!r}")
            clocks[name] = clock
        return clocks

    def dist(self, value: Any, where: str, maximum: float | None = None) -> replay.Dist:
        """``[min, max]`` (uniform) or ``{dist: uniform|lognormal, ...}``."""
        if isinstance(value, list):
            lo, hi = self.range(value, where, (0.0, 0.0), maximum)
            return replay.Dist("uniform", lo, hi)
        d = self.mapping(value, where, {"dist", "min", "max", "median", "sigma"})
        kind = d.get("dist", "uniform")
        lo = self.number(d.get("min", 0), f"{where}.min", 0.0, maximum)
        hi = self.number(d.get("max", maximum or 1e12), f"{where}.max", 0.0, maximum)
        if lo > hi:
            raise self.fail(f"{where}.min", f"min {lo:g} is above max {hi:g}")
        if kind == "uniform":
            return replay.Dist("uniform", lo, hi, lo, hi)
        if kind == "lognormal":
            if "median" not in d or "sigma" not in d:
                raise self.fail(where, "a lognormal needs median and sigma")
            median = self.number(d["median"], f"{where}.median", 1e-9, maximum)
            sigma = self.number(d["sigma"], f"{where}.sigma", 0.0, 5.0)
            return replay.Dist("lognormal", median, sigma, lo, hi)
        raise self.fail(f"{where}.dist", f"must be uniform or lognormal, got {kind!r}")

    def synthetic(self, value: Any) -> replay.Synthetic:
        where = "sessions.synthetic"
        spec = self.mapping(
            value, where, {"arrivals_per_hour", "dwell", "energy_kwh", "gap", "horizon"}
        )
        rates = spec.get("arrivals_per_hour")
        if not isinstance(rates, list) or len(rates) != 24:
            raise self.fail(
                f"{where}.arrivals_per_hour",
                "expected 24 numbers: arrivals per station in each hour of the day",
            )
        hourly = tuple(
            self.number(r, f"{where}.arrivals_per_hour.{i}", 0.0, 60.0) for i, r in enumerate(rates)
        )
        if "dwell" not in spec:
            raise self.fail(where, "needs dwell (seconds plugged in)")
        return replay.Synthetic(
            arrivals_per_hour=hourly,
            dwell=self.dist(spec["dwell"], f"{where}.dwell", 7 * 86_400.0),
            energy=(
                self.dist(spec["energy_kwh"], f"{where}.energy_kwh", 1000.0)
                if "energy_kwh" in spec
                else None
            ),
            gap=self.number(spec.get("gap", 300), f"{where}.gap", 0.0),
            horizon=self.number(spec.get("horizon", float("inf")), f"{where}.horizon", 0.0),
        )

    def kinds(
        self, value: Any, model: str, firmware: str, config: dict[str, Any]
    ) -> tuple[Kind, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            raise self.fail("kinds", "expected a non-empty list of station kinds")
        out = []
        names: set[str] = set()
        for i, raw in enumerate(value):
            where = f"kinds.{i}"
            k = self.mapping(raw, where, {"name", "weight", "count", "model", "firmware", "config"})
            name = str(k.get("name", f"kind{i}"))
            if name in names:
                raise self.fail(f"{where}.name", f"duplicate kind {name!r}")
            names.add(name)
            if "weight" in k and "count" in k:
                raise self.fail(f"{where}.count", "give weight or count, not both")
            count = None
            if "count" in k:
                count = int(self.number(k["count"], f"{where}.count", 0, 1_000_000))
            kind_model = str(k.get("model", model))
            if len(kind_model) > 20:
                raise self.fail(f"{where}.model", "chargePointModel is at most 20 characters")
            kind_firmware = str(k.get("firmware", firmware))
            if not 1 <= len(kind_firmware) <= 50:
                raise self.fail(f"{where}.firmware", "firmwareVersion is 1..50 characters")
            merged = dict(config)
            merged.update(self.mapping(k.get("config"), f"{where}.config", _config_keys()))
            try:
                ConfigStore(merged)
            except ConfigError as exc:
                key = next((c for c in merged if f"'{c}'" in str(exc)), "")
                raise self.fail(
                    f"{where}.config.{key}" if key else f"{where}.config", str(exc)
                ) from None
            out.append(
                Kind(
                    name=name,
                    weight=self.number(k.get("weight", 1), f"{where}.weight"),
                    count=count,
                    model=kind_model,
                    firmware=kind_firmware,
                    config=merged,
                )
            )
        return tuple(out)

    def load(self, value: Any) -> Load | None:
        if value is None:
            return None
        fields = {"shape", "stations", "spawn_rate", "over", "step", "every"}
        fields |= {"outage_at", "outage", "hold"}
        spec = self.mapping(value, "load", fields)
        shape = spec.get("shape")
        if shape not in SHAPES:
            raise self.fail("load.shape", f"must be one of {', '.join(SHAPES)}, got {shape!r}")
        if "stations" not in spec:
            raise self.fail("load", "needs stations (how many at the peak)")
        d = Load(shape, 1)

        def num(name: str, default: float, minimum: float = 0.0) -> float:
            return self.number(spec.get(name, default), f"load.{name}", minimum)

        return Load(
            shape=shape,
            stations=int(self.number(spec["stations"], "load.stations", 1, 1_000_000)),
            spawn_rate=num("spawn_rate", d.spawn_rate, 0.01),
            over=num("over", d.over, 0.001),
            step=int(num("step", d.step, 1)),
            every=num("every", d.every, 0.001),
            outage_at=num("outage_at", d.outage_at),
            outage=num("outage", d.outage),
            hold=None if spec.get("hold") is None else num("hold", 0.0),
        )


def _config_keys() -> set[str]:
    from fleet.model.config import KEYS

    return set(KEYS)
