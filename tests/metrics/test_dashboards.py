"""grafana/dashboards/*.json is what grafana/build.py builds: nobody edits the JSON by
hand (Grafana's "save" included) without the code, and every query lives in one place.

Run ``python grafana/build.py`` after changing a dashboard; ``--check`` says which file
is stale, as this test does.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "grafana" / "build.py"


def _build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_are_the_generated_ones() -> None:
    files = _build().render()
    committed = {p.name: p.read_text() for p in (ROOT / "grafana" / "dashboards").glob("*.json")}
    assert sorted(committed) == sorted(files)
    stale = [name for name, text in files.items() if committed[name] != text]
    assert not stale, f"run `python grafana/build.py`: {stale} differ"


def test_check_mode_names_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = _build()
    monkeypatch.setattr(build, "OUT", tmp_path)
    assert build.main([]) == 0  # writes the dashboards into tmp_path
    assert build.main(["--check"]) == 0
    path = tmp_path / "fleet-overview.json"
    path.write_text(path.read_text().replace("Stations connected", "Stations online"))
    assert build.main(["--check"]) == 1
    assert "fleet-overview.json is not what grafana/build.py builds" in capsys.readouterr().out


def test_every_query_is_written_once() -> None:
    """One place per query: an expression repeated literally in two panels would be two
    places to fix; the same named query reused (Q.started in two panels) is one."""
    build = _build()
    names = {value: name for name, value in vars(build.Q).items() if isinstance(value, str)}
    exprs = [
        target["expr"]
        for text in build.render().values()
        for panel in json.loads(text)["panels"]
        for target in panel["targets"]
    ]
    unnamed = sorted({e for e in exprs if e not in names})
    assert not unnamed, unnamed


def test_the_product_does_not_import_the_sdk() -> None:
    """The SDK is a development dependency: nothing under fleet/ may need it."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "fleet").rglob("*.py")
        if "grafana_foundation_sdk" in p.read_text()
    ]
    assert not offenders
