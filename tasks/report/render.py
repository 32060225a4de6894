"""The documents of a release, built from its files only: CHANGES.md and report/.

`render_release(folder)` is what the publisher runs on a release it is writing (a `Renderer`), and
what `talent-index report` runs on a published one (into another folder: releases are immutable).
It reads the release's manifest, its `methodology.yaml` and data files, and the previous release
the manifest names (when that one is intact).
"""

from __future__ import annotations

from pathlib import Path

from scoring import load_methodology
from tasks.errors import PipelineError
from tasks.report.changes import changes_markdown, diff_releases
from tasks.report.html import build_report
from tasks.store.releases import intact_previous, read_manifest, releases_dir
from tasks.store.storage import atomic_write_text


def release_changes(folder: Path, manifest: dict) -> dict | None:
    """The changes against the previous release; None (reported as such) when there is none or it is
    damaged: a release never depends on an earlier one being readable."""
    prev = manifest.get("previous_release")
    prev_path = intact_previous(releases_dir() / prev) if prev else None
    if prev_path is None:
        return None
    try:
        return diff_releases(prev_path, folder)
    except (PipelineError, OSError, ValueError, KeyError):
        return None


def render_release(folder: Path, out: Path | None = None) -> list[str]:
    """Write CHANGES.md and the HTML report of the release in `folder` (into `folder` itself, or the
    report alone into `out`); returns the report's file names."""
    manifest = read_manifest(folder)
    own = folder / "methodology.yaml"
    methodology = load_methodology(own if own.exists() else None)
    changes = release_changes(folder, manifest)
    if out is not None:
        return build_report(folder, out, manifest, methodology, changes)
    atomic_write_text(folder / "CHANGES.md", changes_markdown(changes, manifest["release_id"]))
    return build_report(folder, folder / "report", manifest, methodology, changes)
