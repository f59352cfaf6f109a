"""The documentation stays true: the site builds with strict link checking, every link of
the README reaches a page (and a heading) that exists, every page is one click from the
README, every option a command accepts is documented, and the reference tables generated
from the station model equal the model.

The tables of configuration keys and vendor errors in docs/station-model.md are written
from the model's own tables; after changing the model, regenerate them with
``python tests/test_docs.py --write``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
STATION_MODEL = DOCS / "station-model.md"

# [text](target) outside code; images and angle-bracket autolinks are not used.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`]*`")


def _links(markdown: str) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", markdown))
    return _LINK.findall(text)


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (the README is read there)."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _mkdocs_slug(heading: str) -> str:
    """The anchor MkDocs gives a heading (Python-Markdown's toc.slugify)."""
    text = re.sub(r"[`*_]", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _headings(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    return [m.group(2) for m in re.finditer(r"^(#{1,6}) +(.+?) *$", text, re.M)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_site_builds_strict_and_has_every_page(site: Path) -> None:
    for page in DOCS.glob("*.md"):
        built = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert built.is_file(), f"{page.name} is not in the built site"


def test_every_readme_link_resolves(site: Path) -> None:
    broken = []
    for target in _links(README.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / path) if path else README
        if not file.exists():
            broken.append(f"{target}: no file {path}")
            continue
        if not anchor:
            continue
        if file.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
            continue
        headings = _headings(file)
        if anchor not in {_github_slug(h) for h in headings}:
            broken.append(f"{target}: no heading with that anchor on GitHub")
        if file.parent == DOCS:
            built = site / ("index.html" if file.stem == "index" else f"{file.stem}/index.html")
            ids = set(re.findall(r'id="([^"]+)"', built.read_text()))
            if anchor not in ids:
                broken.append(f"{target}: no such anchor in the built site")
    assert not broken, "\n".join(broken)


def test_every_page_and_section_is_one_click_from_the_readme() -> None:
    linked = {t.partition("#")[0] for t in _links(README.read_text())}
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert not pages - linked, f"pages the README does not link: {sorted(pages - linked)}"


def test_headings_have_the_same_anchor_on_github_and_in_the_site() -> None:
    """A cross-page link works in both places only if both renderers agree."""
    differ = [
        f"{page.name}: {h!r} ({_github_slug(h)} / {_mkdocs_slug(h)})"
        for page in [*DOCS.glob("*.md"), README]
        for h in _headings(page)
        if _github_slug(h) != _mkdocs_slug(h)
    ]
    assert not differ, "\n".join(differ)


@pytest.mark.parametrize("command", ["run", "csms", "capacity", "bench"])
def test_every_option_of_a_command_is_documented(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", proc.stdout)) - {"--help"}
    docs = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    missing = sorted(o for o in options if not re.search(re.escape(o) + r"(?![a-z0-9-])", docs))
    assert not missing, f"fleet {command}: options not in docs/: {missing}"


def test_the_profile_examples_are_valid_profiles(tmp_path: Path) -> None:
    """The format reference, fault storms, misbehaving stations and security examples
    are accepted as written by `fleet profiles validate` (the placeholder for 24 hourly
    rates filled in, the sample trace named by its path in the repository)."""
    files = []
    for page in ("profiles.md", "security.md"):
        blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / page).read_text(), re.S)
        assert blocks, page
        for i, block in enumerate(blocks):
            text = block.replace("[24 numbers]", "[" + ", ".join(["1"] * 24) + "]")
            text = text.replace(
                "traces/commuter-day.csv", str(ROOT / "profiles/traces/commuter-day.csv")
            )
            file = tmp_path / f"{page[:-3]}-{i}.yaml"
            file.write_text(text)
            files.append(str(file))
    proc = subprocess.run(
        [sys.executable, "-m", "fleet", "profiles", "validate", *files],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FLEET_AUTH_KEY": "a-password-of-24-bytes!!"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- tables generated from the model -----------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def config_keys_table() -> str:
    from fleet.model.config import KEYS

    rows = ["| key | access | type | default | values | meaning |", "|---|---|---|---|---|---|"]
    for spec in KEYS.values():
        values = []
        if spec.kind == "int":
            lo, hi = spec.minimum, spec.maximum
            if hi is not None and hi < 2**31 - 1:
                values.append(f"{lo}..{hi}")
            else:
                values.append(f">= {lo}")
        if spec.allowed:
            values.append("any of " + ", ".join(f"`{v}`" for v in sorted(spec.allowed)))
        if spec.pattern_hint:
            values.append(_cell(spec.pattern_hint))
        if spec.max_items_key:
            values.append(f"at most `{spec.max_items_key}` items")
        if spec.max_length is not None:
            values.append(f"at most {spec.max_length} characters")
        if spec.min_bytes is not None:
            values.append(f"at least {spec.min_bytes} bytes")
        if spec.reboot_required:
            values.append("*reboot*")
        if not spec.write_supported:
            values.append("*not writable*")
        default = f"`{_cell(spec.default)}`" if spec.default else "(empty)"
        if spec.access.value == "WO":
            default = "(never shown)"
        rows.append(
            f"| `{spec.name}` | {spec.access.value} | {spec.kind} | {default} "
            f"| {'; '.join(values)} | {_cell(spec.description)} |"
        )
    return "\n".join(rows)


def vendor_errors_table() -> str:
    from fleet.model.faults import VENDOR_ERRORS

    rows = [
        "| # | vendorErrorCode | errorCode | info | effect | connector | clears |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in VENDOR_ERRORS:
        b = e.behaviour
        if not e.is_error:
            effect = "not an error: all is well"
        elif b.faults:
            effect = f"Faulted; stops a transaction ({b.stop_reason})"
        else:
            effect = "reported, status unchanged"
        info = _cell(e.info) + ("" if e.enabled_by_default else " (*off by default*)")
        rows.append(
            f"| {e.number} | `{e.vendor_code}` | {e.ocpp_code} | {info} | {effect} "
            f"| {b.connector} | {b.clears} |"
        )
    return "\n".join(rows)


TABLES = {"config-keys": config_keys_table, "vendor-errors": vendor_errors_table}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name}\b[^>]*-->\n)(.*?)(<!-- end: {name} -->)", re.S)


def _with_tables(text: str) -> str:
    for name, make in TABLES.items():
        text = _block(name).sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(3), text)
    return text


@pytest.mark.parametrize("name", sorted(TABLES))
def test_generated_tables_equal_the_model(name: str) -> None:
    text = STATION_MODEL.read_text()
    found = _block(name).search(text)
    assert found, f"docs/station-model.md has no generated block {name!r}"
    assert found.group(2) == TABLES[name]() + "\n", (
        f"the {name} table in docs/station-model.md differs from the model: "
        "run python tests/test_docs.py --write"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        STATION_MODEL.write_text(_with_tables(STATION_MODEL.read_text()))
        print(f"wrote the generated tables of {STATION_MODEL.relative_to(ROOT)}")
    else:
        sys.exit("usage: python tests/test_docs.py --write")
