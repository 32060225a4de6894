"""The release store, read-only: list, read and verify releases, LATEST, the release log.

A release is a folder `releases/<id>/` whose `manifest.json` lists every other file with its
sha256; `releases/LATEST` names the latest release of the newest edition; `releases/log.jsonl`
records every publication (new or reused) in order. Only the publisher (`tasks.publish.publisher`)
writes here; everything else reads through this module.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pandas as pd

from tasks.errors import PipelineError, StorageError
from tasks.settings import data_home, safe_id
from tasks.store.storage import sha256_file

RELEASE_LOG = "log.jsonl"


def releases_dir() -> Path:
    return data_home() / "releases"


def read_release_log() -> list[dict]:
    """Every publication in order; a damaged line is skipped (the others still count)."""
    path = releases_dir() / RELEASE_LOG
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    out = []
    for raw in lines:
        with contextlib.suppress(ValueError):
            e = json.loads(raw) if raw.strip() else None
            if isinstance(e, dict) and "release_id" in e and "edition" in e:
                out.append(e)
    return out


def latest_by_edition() -> dict[str, str]:
    """edition -> the release most recently published for it (that still exists)."""
    out: dict[str, str] = {}
    for e in read_release_log():
        if (releases_dir() / e["release_id"] / "manifest.json").exists():
            out[str(e["edition"])] = e["release_id"]
    return out


def previous_release(edition: str) -> str | None:
    """What a new release of `edition` is compared with: the latest release of the same edition,
    else the latest of the newest earlier edition (None when there is none)."""
    latest = latest_by_edition()
    if edition in latest:
        return latest[edition]
    older = sorted(e for e in latest if e < edition)
    return latest[older[-1]] if older else None


def read_latest_id() -> str | None:
    p = releases_dir() / "LATEST"
    return p.read_text().strip() if p.exists() else None


def latest_release_manifest() -> dict | None:
    rid = read_latest_id()
    if not rid:
        return None
    try:
        return json.loads((releases_dir() / safe_id(rid, "release id") / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def latest_release_edition() -> str | None:
    manifest = latest_release_manifest()
    return str(manifest["edition"]) if manifest else None


def list_releases() -> list[dict]:
    """Every release whose manifest can be read, oldest first (`damaged_releases` names the others)."""
    return scan_releases()[0]


def damaged_releases() -> list[tuple[str, str]]:
    """(release id, why) of every release folder whose manifest cannot be read."""
    return scan_releases()[1]


def scan_releases() -> tuple[list[dict], list[tuple[str, str]]]:
    out: list[dict] = []
    damaged: list[tuple[str, str]] = []
    root = releases_dir()
    if not root.is_dir():
        return out, damaged
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            out.append(read_manifest(d))
        except StorageError as exc:
            damaged.append((d.name, str(exc)))
    return sorted(out, key=lambda m: m["created_at"]), damaged


def find_release(fingerprint: str) -> dict | None:
    return next((m for m in list_releases() if m.get("inputs_fingerprint") == fingerprint), None)


def read_manifest(path: Path) -> dict:
    m = path / "manifest.json"
    try:
        doc = json.loads(m.read_text())
    except OSError as exc:
        raise StorageError(f"{m} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise StorageError(f"{m} is damaged: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "release_id" not in doc:
        raise StorageError(f"{m} is damaged: not a release manifest")
    return doc


def release_path(release_id: str | None = None) -> Path:
    rid = release_id or read_latest_id()
    if not rid:
        raise PipelineError(f"no release yet under {releases_dir()}: run `talent-index refresh` first")
    path = releases_dir() / safe_id(rid, "release id")
    if not (path / "manifest.json").exists():
        known = [m["release_id"] for m in list_releases()]
        raise PipelineError(f"no release {rid!r} under {releases_dir()}; known: {known or 'none'}")
    return path


def read_release_file(release_id: str, name: str) -> pd.DataFrame:
    """A release's Parquet/CSV file, after checking its sha256 against the manifest."""
    path = release_path(release_id)
    manifest = read_manifest(path)
    entry = manifest.get("files", {}).get(name)
    f = path / name
    if entry is None:
        raise PipelineError(f"release {release_id}: {name} is not listed in its manifest")
    try:
        actual = sha256_file(f)
    except OSError as exc:
        raise StorageError(f"release {release_id}: {f} cannot be read ({exc.strerror})") from None
    if actual != entry["sha256"]:
        raise StorageError(
            f"release {release_id}: {f} is damaged (sha256 {actual[:12]}… differs from the "
            f"manifest's {entry['sha256'][:12]}…)"
        )
    return pd.read_parquet(f) if name.endswith(".parquet") else pd.read_csv(f)


def verify_release(release_id: str, names: list[str] | None = None) -> list[str]:
    """Files (all, or those `names`) whose sha256 differs from the manifest; empty when intact."""
    path = release_path(release_id)
    try:
        manifest = read_manifest(path)
    except StorageError:
        return ["manifest.json"]
    files = manifest["files"] if names is None else {n: manifest["files"].get(n, {"sha256": ""}) for n in names}
    return [n for n, f in files.items() if not (path / n).exists() or sha256_file(path / n) != f["sha256"]]


def require_intact(release_id: str, names: list[str] | None = None) -> Path:
    """The release's folder, after checking its files (all, or `names`) against the manifest: a
    damaged one is an error naming the files (restore the release or publish a new one)."""
    path = release_path(release_id)
    read_manifest(path)  # an unreadable manifest is named as such
    bad = verify_release(release_id, names)
    if bad:
        raise StorageError(
            f"release {release_id} is damaged: {', '.join(bad)} differ from its manifest's "
            f"checksums ({path}); restore it from a backup or publish a new release"
        )
    return path


def intact_previous(path: Path | None) -> Path | None:
    """`path` when it is a release whose files all match its manifest, else None (a comparison with
    a damaged or removed release is left out, never an error)."""
    if path is None or not (path / "manifest.json").exists():
        return None
    try:
        return None if verify_release(path.name) else path
    except (PipelineError, OSError, ValueError, KeyError):
        return None


def edition_indexes(columns: list[str], skip: str) -> list[tuple[str, str, pd.DataFrame]]:
    """(edition, release id, index table with `columns`) of the latest release of every edition but
    `skip`; a damaged or removed release is left out (`releases verify` names it)."""
    out = []
    for ed, rid in sorted(latest_by_edition().items()):
        if ed == skip:
            continue
        try:
            idx = read_release_file(rid, "index.parquet")
        except (PipelineError, OSError, ValueError):
            continue
        out.append((ed, rid, idx.reindex(columns=columns)))
    return out
