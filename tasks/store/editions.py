"""Editions of the index: which one a run publishes (`--edition auto` or a year), and which
recorded editions the offline sample holds (`<recordings>/<edition>/index.json`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from tasks.errors import PipelineError
from tasks.settings import recordings_dir
from tasks.store.releases import latest_release_edition

_YEAR = re.compile(r"^(19|20)\d{2}$")


def recorded_editions(root: Path | None = None) -> list[str]:
    """Editions the recordings hold: sub-folders named by a year with an index.json, oldest first."""
    root = Path(root) if root else recordings_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if _YEAR.match(p.name) and (p / "index.json").is_file())


def default_edition() -> str:
    """The newest recorded edition (what an offline run publishes by default), else this year."""
    recorded = recorded_editions()
    return recorded[-1] if recorded else this_year()


def this_year() -> str:
    return str(datetime.now(UTC).year)


def check_edition(edition: str) -> str:
    edition = str(edition)
    if not _YEAR.match(edition):
        raise PipelineError(f"edition {edition!r}: expected a year such as 2020, or 'auto'")
    return edition


def resolve_edition(edition: str | None, mode: str, cadence: str = "annual") -> str:
    """The index edition a run publishes.

    `auto`: offline, the newest edition the recordings hold; online, the current year — except for
    the quarterly cadence, which refreshes the edition of the latest release (a quarterly run
    updates Numbeo's current figures within the edition the other sources were published for).
    A year: checked to exist (offline: recorded; online: not in the future)."""
    if edition in (None, "", "auto"):
        if mode == "offline":
            recorded = recorded_editions()
            if not recorded:
                raise PipelineError(
                    f"offline: no recorded editions under {recordings_dir()} "
                    "(expected <edition>/index.json, e.g. 2020/index.json)"
                )
            return recorded[-1]
        if cadence == "quarterly":
            return latest_release_edition() or this_year()
        return this_year()
    edition = check_edition(edition)
    if mode == "offline":
        recorded = recorded_editions()
        if edition not in recorded:
            raise PipelineError(
                f"offline: no recordings for edition {edition} under {recordings_dir()} "
                f"(recorded editions: {', '.join(recorded) or 'none'})"
            )
    elif int(edition) > int(this_year()):
        raise PipelineError(
            f"edition {edition} is in the future (this year is {this_year()}): no source can have published it"
        )
    return edition
