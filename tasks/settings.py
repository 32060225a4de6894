"""Where things live. Everything can be moved with TALENT_INDEX_HOME (tests use a temp dir)."""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "data"  # versioned configuration and the bundled sample
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def data_home() -> Path:
    """Root of run-time data: raw/, snapshots/, releases/ (default: <checkout>/data)."""
    return Path(os.environ.get("TALENT_INDEX_HOME", CONFIG_DIR)).resolve()


def recordings_dir() -> Path:
    return Path(os.environ.get("TALENT_INDEX_RECORDINGS", CONFIG_DIR / "recordings")).resolve()


def safe_id(value: str, what: str) -> str:
    """Validate an id before it becomes part of a path (no traversal, no separators)."""
    if not isinstance(value, str) or not _SAFE_ID.match(value) or ".." in value:
        raise ValueError(f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-' only")
    return value
