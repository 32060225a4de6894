"""The data home's format: every stored path is relative to it, so it can be copied or restored
anywhere (`cp -a data /elsewhere && TALENT_INDEX_HOME=/elsewhere`). A home written before that
(absolute paths, no ingest logs) is refused until `talent-index home migrate` rewrites it."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.errors import StorageError
from tasks.settings import data_home
from tasks.store.storage import (
    HOME_FORMAT,
    atomic_write_bytes,
    atomic_write_json,
    ingest_log_path,
    list_snapshots,
    utc_now,
)

FORMAT_FILE = "FORMAT.json"


def home_format(home: Path | None = None) -> int | None:
    """The format of a data home: HOME_FORMAT, 1 (written before formats were recorded), or None
    when it holds nothing yet."""
    home = home or data_home()
    f = home / FORMAT_FILE
    if f.exists():
        try:
            return int(json.loads(f.read_text())["format"])
        except (OSError, ValueError, KeyError, TypeError):
            raise StorageError(f'{f} is not a readable format marker (expected {{"format": {HOME_FORMAT}}})') from None
    if any((home / sub).is_dir() and any((home / sub).iterdir()) for sub in ("snapshots", "releases")):
        return 1
    return None


def require_current_format() -> None:
    """Before writing: a new home is marked; an older one is refused with how to migrate it."""
    home = data_home()
    fmt = home_format(home)
    if fmt is None:
        atomic_write_json(home / FORMAT_FILE, {"format": HOME_FORMAT, "created_at": utc_now()})
    elif fmt < HOME_FORMAT:
        raise StorageError(
            f"the data home {home} was written by an older version (absolute paths, no ingest "
            f"logs): run `talent-index home migrate` once to rewrite its provenance and "
            f"manifests (data files are not touched), then run this again"
        )
    elif fmt > HOME_FORMAT:
        raise StorageError(
            f"the data home {home} has format {fmt}, newer than this version understands "
            f"({HOME_FORMAT}): upgrade the pipeline"
        )


def _relative(value: str, home: Path, marker: str) -> str:
    """An absolute path written by an older version -> relative to the home (by its first `marker`
    folder: snapshots/ or raw/), else unchanged."""
    p = Path(value)
    if not p.is_absolute():
        return value
    parts = p.parts
    if marker in parts:
        return Path(*parts[parts.index(marker) :]).as_posix()
    return value


def migrate(home: Path | None = None) -> list[str]:
    """Rewrite a format-1 home in place: relative paths in snapshot provenance, raw metadata and
    release manifests, and an ingest log per source built from the snapshots' creation times.
    Parquet, raw objects and release files are not touched (their checksums stay valid)."""
    home = home or data_home()
    fmt = home_format(home)
    if fmt is None:
        raise StorageError(
            f"{home} holds no data home (no snapshots/, no releases/, no {FORMAT_FILE}): nothing to migrate; "
            "check TALENT_INDEX_HOME"
        )
    if fmt == HOME_FORMAT:
        return [f"{home} is already in format {HOME_FORMAT}: nothing to do"]
    done = []
    by_source: dict[str, list[dict]] = {}
    for info in list_snapshots():
        folder = home / "snapshots" / info["source"] / info["edition"] / info["snapshot_id"]
        info["path"] = _relative(info["path"], home, "snapshots")
        for t in info.get("tables", {}).values():
            t["path"] = _relative(t["path"], home, "snapshots")
        for r in info.get("inputs", []):
            if r.get("path") and Path(r["path"]).is_absolute() and "raw" in Path(r["path"]).parts:
                r["path"], r["root"] = _relative(r["path"], home, "raw"), "home"
        atomic_write_json(folder / "provenance.json", info)
        by_source.setdefault(info["source"], []).append(info)
    for source, infos in sorted(by_source.items()):
        log = ingest_log_path(source)
        if log.exists():
            continue
        lines = [
            json.dumps(
                {
                    "time": i["created_at"],
                    "source": source,
                    "snapshot_id": i["snapshot_id"],
                    "edition": i["edition"],
                    "vintage": i.get("vintage", i["edition"]),
                    "mode": "migrated",
                    "run_id": None,
                },
                sort_keys=True,
            )
            for i in sorted(infos, key=lambda i: i["created_at"])
        ]
        atomic_write_bytes(log, ("\n".join(lines) + "\n").encode())
        done.append(f"{source}: ingest log built from {len(infos)} snapshots (in order of creation)")
    for meta in list((home / "raw").glob("*/*/*.json")) if (home / "raw").is_dir() else []:
        try:
            rec = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("path") and Path(rec["path"]).is_absolute():
            if "raw" in Path(rec["path"]).parts:
                rec["path"], rec["root"] = _relative(rec["path"], home, "raw"), "home"
            else:
                rec["root"] = ""
            atomic_write_json(meta, rec, durable=False)
    releases = home / "releases"
    for m in sorted(releases.glob("*/manifest.json")) if releases.is_dir() else []:
        doc = json.loads(m.read_text())
        for i in doc.get("inputs", []):
            i["path"] = _relative(i["path"], home, "snapshots")
        atomic_write_json(m, doc)
        done.append(f"release {m.parent.name}: manifest paths made relative")
    log = releases / "log.jsonl"
    if releases.is_dir() and not log.exists():
        manifests = []
        for m in releases.glob("*/manifest.json"):
            try:
                manifests.append(json.loads(m.read_text()))
            except (OSError, ValueError):
                done.append(f"release {m.parent.name}: manifest unreadable, left out of the release log")
        latest = (releases / "LATEST").read_text().strip() if (releases / "LATEST").exists() else None
        # in order of creation, LATEST's release last so that it stays the latest of its edition
        manifests.sort(key=lambda m: (m["release_id"] == latest, m["created_at"]))
        lines = [
            json.dumps(
                {"time": m["created_at"], "release_id": m["release_id"], "edition": str(m["edition"]), "reused": False},
                sort_keys=True,
            )
            for m in manifests
        ]
        if lines:
            atomic_write_bytes(log, ("\n".join(lines) + "\n").encode())
            done.append(f"release log built from {len(lines)} releases")
    atomic_write_json(home / FORMAT_FILE, {"format": HOME_FORMAT, "migrated_at": utc_now()})
    done.append(f"{home}: now format {HOME_FORMAT} (relative paths)")
    return done
