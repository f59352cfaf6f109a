"""A profile and the trace file it names, as text: how the Locust master ships a
profile to workers that do not have its files (see fleet.locust.distributed)."""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from fleet.scenarios.profile import ProfileError, find


def bundle(spec: str) -> dict[str, Any]:
    """The profile ``spec`` and the trace file it names, as text, for a worker."""
    path = find(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    files: dict[str, str] = {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None  # load() names the line; the worker reports it
    sessions = data.get("sessions") if isinstance(data, dict) else None
    trace = sessions.get("trace") if isinstance(sessions, dict) else None
    if isinstance(trace, str) and trace and not Path(trace).is_absolute():
        # A trace that cannot be read is not shipped: the worker's load() then names it,
        # as a local run would.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            files[Path(trace).as_posix()] = (path.parent / trace).read_text(encoding="utf-8")
    return {"name": path.name, "text": text, "files": files}


def unpack(data: dict[str, Any], folder: Path) -> Path:
    """Write a :func:`bundle` under ``folder``; the profile's path.

    The profile goes deep enough in ``folder`` that the files it names with ``..``
    still land inside ``folder``.
    """
    depth = 0
    for name in data["files"]:
        parts = PurePosixPath(name).parts
        ups = 0
        for part in parts:
            if part == "..":
                ups += 1
            elif part != ".":
                break
        depth = max(depth, ups)
    home = folder.joinpath(*(["p"] * depth)) if depth else folder
    home.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    for name, text in data["files"].items():
        target = (home / name).resolve()
        if root not in target.parents:
            continue  # never write outside our folder
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    profile = home / PurePosixPath(data["name"]).name
    profile.write_text(data["text"], encoding="utf-8")
    return profile
