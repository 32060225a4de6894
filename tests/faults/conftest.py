"""Fault-injection fixtures: a baseline home with snapshots and a release, and the invariants
checked after every case (nothing earlier changed, nothing partial under a final name)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.http.conftest import server  # noqa: F401  (re-exported fixture)

ROOT = Path(__file__).resolve().parent.parent.parent


LOGS = (".jsonl",)  # append-only logs (ingests, releases): earlier bytes must stay a prefix


def checksums(home: Path) -> dict[str, str]:
    out = {}
    for sub in ("snapshots", "releases"):
        for p in sorted((home / sub).rglob("*")):
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(home).parts):
                data = p.read_bytes()
                key = str(p.relative_to(home))
                out[key] = (f"{len(data)}:" if p.name.endswith(LOGS) else "") + hashlib.sha256(data).hexdigest()
    return out


def _unchanged(home: Path, key: str, value: str, after: dict[str, str]) -> bool:
    if key.endswith(LOGS):
        size, digest = value.split(":")
        p = home / key
        return p.exists() and hashlib.sha256(p.read_bytes()[: int(size)]).hexdigest() == digest
    return after.get(key) == value


def assert_nothing_lost(home: Path, before: dict[str, str]) -> None:
    """Earlier files unchanged (logs only appended to); no partial file under a final name; LATEST
    names a complete release."""
    after = checksums(home)
    changed = [k for k, v in before.items() if not _unchanged(home, k, v, after)]
    assert changed == [], f"earlier snapshot or release files changed or vanished: {changed[:5]}"
    for p in (home / "snapshots").rglob("*"):
        if p.is_dir() and not p.name.startswith(".") and p.parent.parent.parent == home / "snapshots":
            assert (p / "provenance.json").exists(), f"snapshot folder without provenance: {p}"
    for p in (home / "releases").iterdir():
        if p.is_dir() and not p.name.startswith("."):
            assert (p / "manifest.json").exists(), f"release folder without manifest: {p}"
    latest = (home / "releases" / "LATEST").read_text().strip()
    manifest = json.loads((home / "releases" / latest / "manifest.json").read_text())
    for name, f in manifest["files"].items():
        assert hashlib.sha256((home / "releases" / latest / name).read_bytes()).hexdigest() == f["sha256"]


@pytest.fixture()
def home(baseline, tmp_path, monkeypatch):
    """A private copy of the baseline home for one case, plus its checksums before the case."""
    h = tmp_path / "home"
    shutil.copytree(baseline, h)
    monkeypatch.setenv("TALENT_INDEX_HOME", str(h))
    return h, checksums(h)


@pytest.fixture()
def recordings_copy(tmp_path, monkeypatch):
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "data" / "recordings", rec)
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    return rec
