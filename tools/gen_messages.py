"""Generate fleet/model/messages.py: a TypedDict for every OCPP 1.6 message the station
model sends or answers, from the official JSON schemas in the ``ocpp`` package.

    python tools/gen_messages.py          # rewrite fleet/model/messages.py
    python tools/gen_messages.py --check  # exit 1 if the file is not what this writes

tests/model/test_messages.py runs the check, and compares each TypedDict's keys with
its schema, so the types cannot drift from the schemas.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from fleet.model.actions import CSMS_INITIATED, STATION_INITIATED

OUT = Path(__file__).resolve().parent.parent / "fleet" / "model" / "messages.py"

ACTIONS = tuple(sorted(set(CSMS_INITIATED) | set(STATION_INITIATED)))

# Nested objects that several messages share get one name (checked to be the same shape).
SHARED = {
    "idTagInfo": "IdTagInfo",
    "meterValue": "MeterValue",
    "transactionData": "MeterValue",
    "sampledValue": "SampledValue",
    "chargingProfile": "ChargingProfile",
    "csChargingProfiles": "ChargingProfile",
    "chargingSchedule": "ChargingSchedule",
    "chargingSchedulePeriod": "ChargingSchedulePeriod",
    "configurationKey": "KeyValue",
    "localAuthorizationList": "AuthorizationData",
}
SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}

# Enums the model passes around on their own get a name (OCPP 1.6's own type names).
ENUMS = {
    ("SampledValue", "context"): "ReadingContext",
    ("SampledValue", "measurand"): "Measurand",
    ("SampledValue", "phase"): "Phase",
    ("SampledValue", "location"): "Location",
    ("SampledValue", "unit"): "UnitOfMeasure",
    ("StatusNotificationRequest", "errorCode"): "ChargePointErrorCode",
    ("StatusNotificationRequest", "status"): "ChargePointStatus",
    ("StopTransactionRequest", "reason"): "Reason",
    ("DiagnosticsStatusNotificationRequest", "status"): "DiagnosticsStatus",
    ("FirmwareStatusNotificationRequest", "status"): "FirmwareStatus",
    ("IdTagInfo", "status"): "AuthorizationStatus",
    ("TriggerMessageRequest", "requestedMessage"): "MessageTrigger",
    ("ChangeConfigurationResponse", "status"): "ConfigurationStatus",
    ("SendLocalListResponse", "status"): "UpdateStatus",
    ("ChargingProfile", "chargingProfilePurpose"): "ChargingProfilePurposeType",
    ("ChargingSchedule", "chargingRateUnit"): "ChargingRateUnitType",
}


def load(name: str) -> dict[str, Any]:
    path = resources.files("ocpp") / "v16" / "schemas" / f"{name}.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def merge(a: dict[str, Any], b: dict[str, Any], where: str) -> dict[str, Any]:
    """One schema for a shape two messages share: the same keys, and where their enums
    differ (StopTransaction's units lack "Hertz"), only the values both allow, so what
    the type admits is valid in both messages."""
    if a == b:
        return a
    if a.get("type") != b.get("type") or a.get("required") != b.get("required"):
        raise SystemExit(f"{where}: two schemas disagree on its shape")
    out = {**b, **a}  # constraints of either (e.g. minItems): not part of the type
    if "enum" in a:
        out["enum"] = [v for v in a["enum"] if v in b["enum"]]
    if "properties" in a:
        if set(a["properties"]) != set(b["properties"]):
            raise SystemExit(f"{where}: two schemas disagree on its keys")
        out["properties"] = {
            k: merge(v, b["properties"][k], f"{where}.{k}") for k, v in a["properties"].items()
        }
    if "items" in a:
        out["items"] = merge(a["items"], b["items"], f"{where}[]")
    return out


class Generator:
    def __init__(self) -> None:
        self.classes: dict[str, str] = {}  # name -> source, in definition order
        self.schemas: dict[str, dict[str, Any]] = {}  # name -> (merged) schema
        self.enums: dict[str, str] = {}  # alias -> its Literal

    def object_type(self, name: str, schema: dict[str, Any]) -> str:
        known = self.schemas.get(name)
        if known is not None:
            schema = merge(known, schema, name)
        self.schemas[name] = schema
        required = set(schema.get("required", []))
        lines = [f"class {name}(TypedDict):"]
        props = schema.get("properties", {})
        for key, sub in props.items():
            kind = self.type_of(key, sub, name)
            lines.append(f"    {key}: {kind if key in required else f'NotRequired[{kind}]'}")
        if not props:
            lines.append("    pass")
        self.classes[name] = "\n".join(lines)
        return name

    def type_of(self, key: str, schema: dict[str, Any], parent: str) -> str:
        if "enum" in schema:
            literal = "Literal[" + ", ".join(json.dumps(v) for v in schema["enum"]) + "]"
            alias = ENUMS.get((parent, key))
            if alias is None:
                return literal
            self.enums[alias] = literal  # a merged shape re-defines it (narrower)
            return alias
        kind = schema.get("type")
        if kind == "object":
            if "properties" not in schema:
                return "dict[str, Any]"
            return self.object_type(SHARED.get(key, parent + key[0].upper() + key[1:]), schema)
        if kind == "array":
            return f"list[{self.type_of(key, schema['items'], parent)}]"
        if isinstance(kind, str) and kind in SCALARS:
            return SCALARS[kind]
        return "Any"


def render() -> str:
    gen = Generator()
    names: list[tuple[str, str, str]] = []  # (schema, class, action)
    for action in ACTIONS:
        for schema_name, cls in ((action, f"{action}Request"), (f"{action}Response", None)):
            schema = load(schema_name)
            name = cls or schema.get("title") or schema_name
            gen.object_type(name, schema)
            names.append((schema_name, name, action))
    head = '''"""TypedDicts for the OCPP 1.6 messages the station model sends and answers.

Generated by tools/gen_messages.py from the official schemas (``ocpp/v16/schemas``);
do not edit. tests/model/test_messages.py checks every class against its schema.
Keys a schema does not require are ``NotRequired``. No ``from __future__ import
annotations`` here: TypedDict needs real annotations to see NotRequired.
"""

from typing import {typing_names}

'''
    aliases = "\n".join(f"{name} = {literal}" for name, literal in sorted(gen.enums.items()))
    body = aliases + "\n\n\n" + "\n\n\n".join(gen.classes.values())
    used = ["Literal", "NotRequired", "TypedDict"] + (["Any"] if "Any" in body else [])
    head = head.replace("{typing_names}", ", ".join(sorted(used)))
    table = "\n".join(f'    "{schema}": {cls},' for schema, cls, _ in names)
    tail = f'''


SCHEMAS: dict[str, type] = {{
{table}
}}
"""Schema name (``Authorize``, ``AuthorizeResponse``) -> its TypedDict."""

StationRequest = {" | ".join(f"{a}Request" for a in STATION_INITIATED)}
"""Any CALL the station sends (what the outbox carries)."""
'''
    source = head + body + tail
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(OUT), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is not what tools/gen_messages.py writes; run it", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
