"""Immutable, content-addressed storage: raw responses, Parquet snapshots, releases.

Every file is written to a temporary name, fsynced, then renamed into place, so an interrupted
run never leaves a half-written file under a final name and never touches earlier data.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.errors import StorageError
from tasks.progress import report
from tasks.settings import data_home, recordings_dir, safe_id

HOME_FORMAT = 2  # 2: every stored path is relative to the data home (or the recordings root)


def home_relative(path: Path | str) -> str:
    """A path inside the data home as stored in provenance, logs and manifests (relative, POSIX)."""
    return Path(path).resolve().relative_to(data_home()).as_posix()


def resolve_stored(path: str, root: str = "home") -> Path:
    """A stored path back to a file: relative to the data home (`home`), the recordings root
    (`recordings`), or absolute as written (`""`, older records)."""
    p = Path(path)
    if p.is_absolute() or root == "":
        return p
    return (recordings_dir() if root == "recordings" else data_home()) / p


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def current_umask() -> int:
    """The process umask (read from /proc where it is shown, else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created(path: Path | str, directory: bool = False) -> None:
    """Give a file or folder made by tempfile (0600 / 0700 whatever the umask) the mode a plain
    open() or mkdir() would have given it, so that published data is as readable as the umask says."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def make_temp_dir(prefix: str, parent: Path) -> Path:
    """A temporary folder beside its final name, with the umask's permissions."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    as_created(tmp, directory=True)
    return tmp


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` atomically (temp file in the same folder, fsync, rename).

    `durable=False` skips the fsyncs (the rename is still atomic for a killed process): used for
    raw responses, which are content-addressed, checked by sha256 on reuse and can be fetched again."""
    atomic_write_stream(path, lambda fh: fh.write(data), durable)


def atomic_write_stream(path: Path, write: Callable[[BinaryIO], object], durable: bool = True) -> None:
    """`atomic_write_bytes` for a file too large to hold in memory twice (a 100,000-city release's
    coverage table): `write(fh)` writes into the temp file, which is then synced and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        as_created(tmp)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise StorageError(f"cannot write {path}: {reason}; nothing was changed under that name") from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj, durable: bool = True) -> None:
    atomic_write_bytes(
        path,
        (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode("utf-8"),
        durable=durable,
    )


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


def frame_fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a table, independent of Parquet writer metadata."""
    return sha256_bytes(df.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def interruption_point(name: str) -> None:
    """Hooks for the fault tests: TALENT_INDEX_FAIL_AT=<name> raises here (a crash), and
    TALENT_INDEX_PAUSE_AT=<name> writes TALENT_INDEX_PAUSE_MARKER and sleeps (to be SIGKILLed)."""
    if os.environ.get("TALENT_INDEX_FAIL_AT") == name:
        raise StorageError(f"simulated failure at {name} (TALENT_INDEX_FAIL_AT)")
    if os.environ.get("TALENT_INDEX_PAUSE_AT") == name:
        marker = os.environ.get("TALENT_INDEX_PAUSE_MARKER")
        if marker:
            Path(marker).write_text(str(os.getpid()))

        time.sleep(float(os.environ.get("TALENT_INDEX_PAUSE_S", "60")))


def remove_stale_temporaries(root: Path | None = None) -> list[str]:
    """Temporary files and folders left by a killed run (called under the refresh lock only)."""
    root = root or data_home()
    removed = []
    for sub in ("snapshots", "releases", "raw"):
        base = root / sub
        if not base.is_dir():
            continue
        for p in list(base.rglob(".*")):
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.is_dir()):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(str(p.relative_to(root)))
    return removed


# --------------------------------------------------------------------------- raw responses
@dataclass
class RawRecord:
    source: str
    url: str
    final_url: str
    status: int
    headers: dict
    fetched_at: str
    sha256: str
    size: int
    user_agent: str
    parser_version: str
    mode: str
    path: str = ""  # relative to `root`
    reused: bool = False
    root: str = "home"  # "home" (the raw store), "recordings" (an offline replay) or "" (absolute)

    @property
    def file(self) -> Path:
        return resolve_stored(self.path, self.root)

    def read(self) -> bytes:
        held = self.__dict__.pop("_body", None)  # the body the fetch already read, handed over once
        return held if held is not None else self.file.read_bytes()

    def holding(self, body: bytes) -> RawRecord:
        """This record, with the `body` it was made from kept for one `read()` (not a field: never
        written into the raw store's metadata): a replay read the file to hash it, and reading it
        again cost as much as parsing at 100,000 cities."""
        self.__dict__["_body"] = body
        return self


def raw_dir(source: str) -> Path:
    return data_home() / "raw" / safe_id(source, "source name")


def store_raw(record: RawRecord, body: bytes) -> RawRecord:
    """Store a response body by its sha256; an identical body is stored once (metadata of its first fetch).

    The URL index it updates is what online runs reuse (within `reuse_within_s`) and send conditional
    requests from. Offline replays are not stored here: the recording is their raw response."""
    obj = raw_object(record.source, body)
    sha, base = obj.name, raw_dir(record.source)
    meta = base / "meta" / f"{sha}.json"
    record.sha256, record.size, record.path, record.root = sha, len(body), home_relative(obj), "home"
    if meta.exists():
        record.reused = True
    else:
        atomic_write_json(meta, asdict(record), durable=False)
    # the latest fetch of each URL (an index, replaced atomically; the objects stay immutable)
    atomic_write_json(base / "urls" / f"{sha256_bytes(record.url.encode())}.json", asdict(record), durable=False)
    return record


def raw_object(source: str, body: bytes) -> Path:
    """The content-addressed path of `body` in the raw store, written there if absent (for parsers that
    read large files in windows later, e.g. VNP46A4 tiles, whatever the body came from)."""
    sha = sha256_bytes(body)
    obj = raw_dir(source) / "objects" / sha[:2] / sha
    if not obj.exists():
        atomic_write_bytes(obj, body, durable=False)
    return obj


def find_raw(source: str, url: str) -> RawRecord | None:
    """The most recent stored response for a URL (used for conditional requests and to resume)."""
    p = raw_dir(source) / "urls" / f"{sha256_bytes(url.encode())}.json"
    try:
        rec = RawRecord(**json.loads(p.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if rec.url != url or not rec.file.exists():
        return None
    # raw files are written without fsync: check the body before trusting it again
    return rec if sha256_file(rec.file) == rec.sha256 else None


# --------------------------------------------------------------------------- snapshots
def snapshots_dir(source: str) -> Path:
    return data_home() / "snapshots" / safe_id(source, "source name")


def write_snapshot(
    source: str, edition: str, table: pd.DataFrame, provenance: dict, extras: dict[str, pd.DataFrame] | None = None
) -> dict:
    """Write a validated table (plus named extra tables) as an immutable Parquet snapshot.

    The snapshot id is the hash of the tables' content: identical content is written once.
    """
    safe_id(edition, "edition")
    tables = {"table": table, **{safe_id(k, "table name"): v for k, v in (extras or {}).items()}}
    fingerprint = sha256_bytes("".join(f"{k}:{frame_fingerprint(v)}" for k, v in sorted(tables.items())).encode())
    snap_id = fingerprint[:16]
    folder = snapshots_dir(source) / edition / snap_id
    damaged: list[str] = []
    if (folder / "provenance.json").exists():
        existing = _read_provenance(folder / "provenance.json")
        damaged = snapshot_damage(existing) if existing else ["provenance.json"]
        if existing and not damaged:
            return {**existing, "reused": True}
    blobs = {k: parquet_bytes(v) for k, v in tables.items()}
    info = {
        **provenance,
        "source": source,
        "edition": edition,
        "snapshot_id": snap_id,
        "path": home_relative(folder / "table.parquet"),
        "sha256": sha256_bytes(blobs["table"]),
        "tables": {
            k: {"path": home_relative(folder / f"{k}.parquet"), "sha256": sha256_bytes(b), "rows": int(len(tables[k]))}
            for k, b in blobs.items()
        },
        "content_fingerprint": fingerprint,
        "rows": int(len(table)),
        "created_at": utc_now(),
        "validated": True,
    }
    if damaged:
        info["repaired"] = {"at": info["created_at"], "damaged_files": damaged}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{snap_id}.", folder.parent)
    try:
        for k, b in blobs.items():
            atomic_write_bytes(tmp / f"{k}.parquet", b)
        atomic_write_json(tmp / "provenance.json", info)
        interruption_point("snapshot-before-rename")
        if damaged:  # same content id: the damaged folder is moved aside, then replaced by the intact one
            aside = folder.parent / f".{snap_id}.damaged.{os.getpid()}"
            os.replace(folder, aside)
            os.replace(tmp, folder)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        _fsync_dir(folder.parent)
    except BaseException as exc:  # an error or an interruption: the temporary folder goes
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, OSError | StorageError):
            raise
        if not damaged and (folder / "provenance.json").exists():  # a concurrent writer won with identical content
            return json.loads((folder / "provenance.json").read_text())
        raise StorageError(f"cannot write snapshot {folder}: {exc}") from exc
    return {**info, "reused": False}


def _read_provenance(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "snapshot_id" in doc else None


def snapshot_damage(info: dict) -> list[str]:
    """Files of a snapshot that are missing or differ from the sha256 its provenance records."""
    bad = []
    for name, entry in (info.get("tables") or {"table": {"path": info["path"], "sha256": info["sha256"]}}).items():
        f = resolve_stored(entry["path"])
        if not f.exists() or sha256_file(f) != entry["sha256"]:
            bad.append(f"{name}.parquet")
    return bad


def snapshot_info(source: str, edition: str, snapshot_id: str) -> dict | None:
    """The provenance of one snapshot, or None when it is not there."""
    return _read_provenance(
        snapshots_dir(source) / safe_id(edition, "edition") / safe_id(snapshot_id, "snapshot id") / "provenance.json"
    )


def list_snapshots(source: str | None = None) -> list[dict]:
    root = data_home() / "snapshots"
    pattern = f"{safe_id(source, 'source name')}/*/*/provenance.json" if source else "*/*/*/provenance.json"
    out = []
    for p in sorted(root.glob(pattern)):
        info = _read_provenance(p)
        if info:
            out.append(info)
    return out


# --------------------------------------------------------------------------- ingest log
# One append-only log per source (`snapshots/<source>/ingests.jsonl`): every validated ingest in the
# order it happened, whatever the content. "Latest" is the last ingest of an edition, so content
# A -> B -> A leaves A as latest even though A's snapshot was written (and content-addressed) first.
INGEST_LOG = "ingests.jsonl"


def ingest_log_path(source: str) -> Path:
    return snapshots_dir(source) / INGEST_LOG


def append_ingest(source: str, entry: dict) -> dict:
    """Add one line to a source's ingest log. The log is rewritten to a temporary file and renamed
    (a killed run leaves the old log, never half a line); earlier lines are kept byte for byte."""
    path = ingest_log_path(source)
    entry = {"time": utc_now(), "source": source, **entry}
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    sep = b"" if not old or old.endswith(b"\n") else b"\n"  # a torn last line stays its own (skipped) line
    line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
    atomic_write_bytes(path, old + sep + line)
    return entry


def read_ingest_log(source: str) -> tuple[list[dict], list[str]]:
    """(entries, problems): every readable line in order; `problems` names unreadable lines."""
    path = ingest_log_path(source)
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return [], []
    entries, problems = [], []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            e = json.loads(raw)
            if not isinstance(e, dict) or "snapshot_id" not in e or "edition" not in e:
                raise ValueError("not an ingest entry: expected snapshot_id and edition")
            safe_id(str(e["snapshot_id"]), "snapshot id")
            safe_id(str(e["edition"]), "edition")
        except ValueError as exc:
            problems.append(
                f"{path} line {n}: skipped ({exc}); the snapshots are untouched: delete or correct that line "
                "(each line is one ingest as JSON) to silence this"
            )
            continue
        entries.append(e)
    for p in problems:
        _name_once(p)
    return entries, problems


_NAMED: set[str] = set()


def _name_once(problem: str) -> None:
    """Say once per process what was skipped (a log line and the run's progress), never silently."""
    if problem in _NAMED:
        return
    _NAMED.add(problem)

    logging.getLogger("talent_index").warning(problem)

    report(f"warning: {problem}")


def latest_ingest(source: str, edition: str | None = None, as_of: str | None = None) -> tuple[dict, dict] | None:
    """(log entry, snapshot provenance) of the last ingest of `source` (of one edition, up to
    `as_of`) whose snapshot is present."""
    entries, _ = read_ingest_log(source)
    for e in reversed(entries):
        if edition is not None and str(e.get("edition")) != str(edition):
            continue
        if as_of is not None and e.get("time", "") > as_of:
            continue
        info = snapshot_info(source, str(e["edition"]), e["snapshot_id"])
        if info is not None:
            return e, info
    return None


def latest_snapshot(source: str, edition: str | None = None, as_of: str | None = None) -> dict | None:
    """The snapshot of the latest ingest of a source (optionally of one edition, up to `as_of`)."""
    found = latest_ingest(source, edition, as_of)
    return found[1] if found else None


def ingested_editions(source: str) -> list[str]:
    entries, _ = read_ingest_log(source)
    return sorted({str(e["edition"]) for e in entries})


def read_snapshot(info: dict, table: str = "table", columns: list[str] | None = None) -> pd.DataFrame:
    """A snapshot's table, after checking its sha256 against the provenance; `columns`: only those
    of them the table has (all when None)."""
    return read_parquet_columns(verified_snapshot_path(info, table), columns)


def read_parquet_columns(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file's table: those of `columns` it has (all when None)."""
    return pd.read_parquet(path, columns=_columns_in(pq.read_schema(path), columns))


def read_snapshot_arrow(info: dict, table: str = "table", columns: list[str] | None = None) -> pa.Table:
    """`read_snapshot` as an Arrow table, its texts read as dictionaries (each distinct text held
    once: the file's own dictionary pages, never a text per row)."""
    path = verified_snapshot_path(info, table)
    schema = pq.read_schema(path)
    columns = _columns_in(schema, columns)
    texts = [
        f.name
        for f in schema
        if (columns is None or f.name in columns) and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    return pq.read_table(path, columns=columns, read_dictionary=texts)


def _columns_in(schema: pa.Schema, columns: list[str] | None) -> list[str] | None:
    """Those of `columns` the table has (all when None)."""
    return None if columns is None else [c for c in columns if c in schema.names]


def verified_snapshot_path(info: dict, table: str = "table") -> Path:
    """The file of a snapshot's table, its sha256 checked against the provenance."""
    entry = info.get("tables", {}).get(table) or {"path": info["path"], "sha256": info["sha256"]}
    path = resolve_stored(entry["path"])
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise StorageError(
            f"snapshot file {path} cannot be read: {exc.strerror}; re-ingest {info.get('source')} to restore it"
        ) from None
    if actual != entry["sha256"]:
        raise StorageError(
            f"snapshot {path} is damaged: sha256 {actual[:12]}… differs from the recorded "
            f"{entry['sha256'][:12]}…; re-ingest {info.get('source')} (same content rewrites it)"
        )
    return path


# --------------------------------------------------------------------------- lock
@contextlib.contextmanager
def refresh_lock(wait: bool = False):
    """One refresh at a time per data home: a second one refuses with a clear message (or waits)."""
    path = data_home() / ".refresh.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 - held open for the whole context: closing it releases the lock
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise StorageError(
                f"another refresh is running on {data_home()} ({holder}); wait for it to finish or run with --wait"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {utc_now()}")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
