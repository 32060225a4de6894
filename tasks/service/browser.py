"""Headless Chromium, for the checks of what the pipeline publishes (the report, Data Docs) and the
README's screenshots: no first-run, sync, component or background traffic of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

QUIET = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str | None:
    """The Chromium executable (Debian: `apt-get install chromium`), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def headless_args(profile: Path, *extra: str) -> list[str]:
    """Flags of a quiet headless run with its own throw-away profile folder."""
    return [*QUIET, f"--user-data-dir={profile}", *extra]
