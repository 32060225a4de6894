"""Where things live. Everything can be moved with TALENT_INDEX_HOME (tests use a temp dir)."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "data"  # versioned configuration and the bundled sample
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@lru_cache(maxsize=64)
def _resolved(path: str) -> Path:
    """`path` made absolute with symlinks resolved, once per process and path: asked for every stored
    file (20,000 times at 10,000 cities), each resolution a system call per path component."""
    return Path(path).resolve()


def data_home() -> Path:
    """Root of run-time data: raw/, snapshots/, releases/ (default: <checkout>/data)."""
    return _resolved(os.environ.get("TALENT_INDEX_HOME", str(CONFIG_DIR)))


def recordings_dir() -> Path:
    return _resolved(os.environ.get("TALENT_INDEX_RECORDINGS", str(CONFIG_DIR / "recordings")))


def sources_path(path: str | Path | None = None) -> Path:
    """The sources configuration: `path`, else TALENT_INDEX_SOURCES, else data/sources.yaml."""
    return Path(path) if path else Path(os.environ.get("TALENT_INDEX_SOURCES", CONFIG_DIR / "sources.yaml"))


PROTECTED = ("releases", "snapshots", "raw")  # written by publishing and ingesting only


def refuse_protected(path: str | Path, what: str = "output") -> Path:
    """`path`, resolved, unless it lies inside the data home's releases/, snapshots/ or raw/ (or is
    the data home's LATEST pointer or log): only publishing and ingesting write there; a command's
    output that landed there would replace a published file (`releases verify` then fails) or the
    LATEST pointer. The error names the tree and what to do."""
    target = Path(path).resolve()
    home = data_home()
    for tree in PROTECTED:
        if target.is_relative_to((home / tree).resolve()):
            raise ValueError(
                f"{what} {path} is inside the data home's {tree}/ ({home / tree}), which only publishing and "
                "ingesting write: write it somewhere else"
            )
    return target


def local_path(url: str) -> Path:
    """The file a `file:relative/path` (from the checkout) or `file:///abs/path` URL names."""
    path = Path(url[len("file://") :] if url.startswith("file://") else url[len("file:") :])
    return path if path.is_absolute() else PROJECT_ROOT / path


def read_capped(path, limit: int, what: str = "file") -> bytes:
    """At most `limit` bytes of a file: a larger one (or an endless stream such as /dev/zero) is a
    clear error, not a MemoryError."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: the {what} is larger than the {limit:,} bytes we read")
    return data


def safe_id(value: str, what: str) -> str:
    """Validate an id before it becomes part of a path (no traversal, no separators)."""
    if not isinstance(value, str) or not _SAFE_ID.match(value) or ".." in value:
        raise ValueError(f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-' only")
    return value
