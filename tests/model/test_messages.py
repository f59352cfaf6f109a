"""fleet.model.messages stays true to the official OCPP 1.6 schemas.

Every TypedDict is compared with its schema, nested objects included: the same keys,
the same required keys, scalar types that match, enum values the schema allows (a
shape two messages share admits only the values both allow). And the module is what
tools/gen_messages.py writes, so regenerating after an ``ocpp`` upgrade is one command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from fleet.model import actions, messages

ROOT = Path(__file__).resolve().parents[2]
SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}


def schema(name: str) -> dict[str, Any]:
    path = resources.files("ocpp") / "v16" / "schemas" / f"{name}.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def check(kind: Any, spec: dict[str, Any], where: str) -> None:
    if get_origin(kind) is Literal:
        assert "enum" in spec, f"{where}: a Literal where the schema has no enum"
        assert set(get_args(kind)) <= set(spec["enum"]), where
        assert get_args(kind), f"{where}: no value left"
        return
    assert "enum" not in spec, f"{where}: the schema's enum is not a Literal"
    if is_typeddict(kind):
        assert spec.get("type") == "object", where
        check_object(kind, spec, where)
    elif get_origin(kind) is list:
        assert spec.get("type") == "array", where
        check(get_args(kind)[0], spec["items"], f"{where}[]")
    elif get_origin(kind) is dict:
        assert spec.get("type") == "object" and "properties" not in spec, where
    elif kind is Any:
        assert spec.get("type") not in SCALARS, where
    else:
        assert SCALARS[spec["type"]] is kind, f"{where}: {kind} for {spec['type']}"


def check_object(cls: Any, spec: dict[str, Any], where: str) -> None:
    props = spec.get("properties", {})
    required = set(spec.get("required", []))
    assert set(cls.__required_keys__) == required, f"{where}: required keys"
    assert set(cls.__optional_keys__) == set(props) - required, f"{where}: optional keys"
    hints = get_type_hints(cls)
    for key, sub in props.items():
        check(hints[key], sub, f"{where}.{key}")


@pytest.mark.parametrize("name", sorted(messages.SCHEMAS))
def test_each_typed_dict_matches_its_schema(name: str) -> None:
    check_object(messages.SCHEMAS[name], schema(name), name)


def test_every_message_of_the_model_has_its_types() -> None:
    for action in set(actions.CSMS_INITIATED) | set(actions.STATION_INITIATED):
        assert {action, f"{action}Response"} <= set(messages.SCHEMAS)


def test_the_module_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_messages.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
