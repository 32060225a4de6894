"""Assemble the latest validated snapshots, score them, and publish an immutable release.

A release folder is written under a temporary name and renamed into place only when complete;
`data/releases/LATEST` is then replaced atomically. An unchanged rerun finds the release with the
same inputs fingerprint and publishes nothing new.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from scoring import IndexResult, Methodology, score_index

from .cities import Registry
from .errors import PipelineError, StorageError
from .settings import PROJECT_ROOT, data_home, safe_id
from .sources import INDICATOR_SOURCES
from .sources.gawc import tier_differences
from .storage import (atomic_write_bytes, interruption_point, atomic_write_json, atomic_write_text, latest_snapshot, parquet_bytes,
                      frame_fingerprint, read_snapshot, sha256_bytes, sha256_file, utc_now)
from .report.changes import changes_markdown, diff_releases
from .report.html import build_report
from .validate import ValidationReport, load_suite, run_suite

SAMPLE_NOTICE = ("SAMPLE RELEASE — built from the bundled offline recordings, in which many values are "
                 "illustrative (see coverage). It is a demonstration of the pipeline, not an official "
                 "City Talent Retention Index.")
PACKAGES = ["prefect", "great-expectations", "pandas", "numpy", "pyarrow", "requests", "beautifulsoup4",
            "lxml", "rasterio", "matplotlib", "scipy", "typer"]


def releases_dir() -> Path:
    return data_home() / "releases"


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[p] = metadata.version(p)
    return out


@dataclass
class Inputs:
    values: pd.DataFrame            # registry city x indicator
    snapshots: dict[str, dict]      # source -> snapshot provenance
    gawc_meta: pd.DataFrame | None
    provenance: pd.DataFrame        # city_id, indicator, source, name_in_source, location, edition


def gather_inputs(registry: Registry, methodology: Methodology, as_of: str | None = None) -> Inputs:
    """The latest validated snapshot of every source (as of `as_of`), as one indicator table."""
    snaps, frames = {}, []
    for source in INDICATOR_SOURCES:
        info = latest_snapshot(source, as_of=as_of)
        if info is None:
            raise PipelineError(f"no validated snapshot of source {source} under {data_home() / 'snapshots'}: "
                                f"run `talent-index refresh` (or ingest {source}) first")
        snaps[source] = info
        df = read_snapshot(info)
        frames.append(df.assign(source=source))
    tidy = pd.concat(frames, ignore_index=True)
    expected = {i.id: i.source for i in methodology.indicators}
    got = tidy.groupby("indicator")["source"].first().to_dict()
    wrong = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
    if wrong:
        raise PipelineError("indicators not supplied by the source the methodology names "
                            f"(indicator: expected, found): {wrong}")
    tidy = tidy[tidy["indicator"].isin(expected) & tidy["city_id"].isin(registry.ids)]
    values = tidy.pivot_table(index="city_id", columns="indicator", values="value", aggfunc="first", dropna=False)
    values = values.reindex(index=registry.ids, columns=list(expected))
    values.index.name = "city_id"
    gawc_info = latest_snapshot("gawc", as_of=as_of)
    gawc_meta = None
    if gawc_info:
        snaps["gawc"] = gawc_info
        gawc_meta = read_snapshot(gawc_info)
    prov = tidy[["city_id", "indicator", "source", "edition", "name_in_source", "location"]]
    return Inputs(values=values, snapshots=snaps, gawc_meta=gawc_meta, provenance=prov.reset_index(drop=True))


def inputs_fingerprint(inputs: Inputs, methodology: Methodology, code: str, registry: Registry) -> str:
    """Identity of a release: its input snapshots, city registry, methodology and code."""
    parts = [f"{s}:{i['content_fingerprint']}" for s, i in sorted(inputs.snapshots.items())]
    parts.append(f"registry:{frame_fingerprint(registry.table.reset_index())}")
    parts += [f"methodology:{methodology.sha256}", f"overrides:{json.dumps(methodology.overrides, sort_keys=True)}",
              f"code:{code}"]
    return sha256_bytes("\n".join(parts).encode())


def read_latest_id() -> str | None:
    p = releases_dir() / "LATEST"
    return p.read_text().strip() if p.exists() else None


def list_releases() -> list[dict]:
    out = []
    root = releases_dir()
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        m = d / "manifest.json"
        if d.is_dir() and not d.name.startswith(".") and m.exists():
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(m.read_text()))
    return sorted(out, key=lambda m: m["created_at"])


def find_release(fingerprint: str) -> dict | None:
    return next((m for m in list_releases() if m.get("inputs_fingerprint") == fingerprint), None)


def new_release_id(edition: str, sample: bool, today: str | None = None) -> str:
    today = today or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    base = f"{edition}-sample-{today}" if sample else f"{edition}-{today}"
    safe_id(base, "release id")
    root = releases_dir()
    rid, n = base, 1
    while (root / rid).exists():
        n += 1
        rid = f"{base}-{n}"
    return rid


def index_table(result: IndexResult, registry: Registry) -> pd.DataFrame:
    meta = registry.table[["name_en", "name_zh", "country", "iso2", "domestic"]]
    out = meta.join(result.index, how="inner").reset_index()
    out = out.rename(columns={"index": "city_id"})
    lead = ["city_id", "name_en", "name_zh", "country", "iso2", "domestic", "final_score",
            "rank_international", "rank_domestic"]
    rest = [c for c in out.columns if c not in lead]
    return out[lead + rest].sort_values("rank_international").reset_index(drop=True)


def validate_index(table: pd.DataFrame, registry: Registry) -> ValidationReport:
    return run_suite(table, load_suite("index"), source="index",
                     params={"registry_city_ids": registry.ids, "registry_count": len(registry.ids)})


def coverage_table(result: IndexResult, inputs: Inputs, sample_status: pd.DataFrame | None) -> pd.DataFrame:
    """Per city and indicator: real / illustrative / imputed, and where the value came from."""
    cov = result.indicators[["city_id", "dimension", "indicator", "value", "imputed"]].merge(
        inputs.provenance, on=["city_id", "indicator"], how="left")
    if sample_status is not None:
        cov = cov.merge(sample_status, on=["city_id", "indicator"], how="left")
    else:
        cov["status"] = "real"
        cov["vintage"] = cov["edition"]
    cov.loc[cov["imputed"], "status"] = "imputed"
    return cov


def publish(result: IndexResult, inputs: Inputs, registry: Registry, methodology: Methodology, *,
            sample: bool, edition: str, index_report: ValidationReport, extra_files=None,
            sample_status: pd.DataFrame | None = None, today: str | None = None) -> dict:
    """Write the release folder atomically and move LATEST to it; returns the manifest.

    `extra_files` maps file names to bytes, or is a callable returning that mapping (called only
    when a new release is actually written).
    """
    code = code_version()
    fingerprint = inputs_fingerprint(inputs, methodology, code, registry)
    existing = find_release(fingerprint)
    if existing:
        _write_latest(existing["release_id"])
        return {**existing, "reused": True}
    root = releases_dir()
    root.mkdir(parents=True, exist_ok=True)
    rid = new_release_id(edition, sample, today)
    previous = read_latest_id()
    table = index_table(result, registry)
    coverage = coverage_table(result, inputs, sample_status)
    files: dict[str, bytes] = {
        "index.parquet": parquet_bytes(table),
        "index.csv": table.to_csv(index=False, float_format="%.4f").encode(),
        "indicators.parquet": parquet_bytes(result.indicators.merge(
            coverage[["city_id", "indicator", "status"]], on=["city_id", "indicator"], how="left")),
        "indicator_weights.csv": result.indicator_weights.to_csv(index=False).encode(),
        "clusters.csv": result.clusters.to_csv(index=False, float_format="%.4f").encode(),
        "coverage.csv": coverage.to_csv(index=False).encode(),
    }
    if methodology.path and Path(methodology.path).exists():
        files["methodology.yaml"] = Path(methodology.path).read_bytes()  # the exact method of this release
    tier_diff = None
    if inputs.gawc_meta is not None:
        tier_diff = tier_differences(inputs.gawc_meta)
        files["gawc_tier_differences.csv"] = tier_diff.to_csv(index=False).encode()
    if callable(extra_files):
        extra_files = extra_files()
    for name, data in (extra_files or {}).items():
        files[name] = data
    status_counts = coverage["status"].value_counts().to_dict()
    manifest = {
        "release_id": rid,
        "edition": edition,
        "created_at": utc_now(),
        "sample": sample,
        "notice": SAMPLE_NOTICE if sample else "",
        "previous_release": previous,
        "inputs_fingerprint": fingerprint,
        "inputs": [{"source": s, "snapshot_id": i["snapshot_id"], "path": i["path"], "sha256": i["sha256"],
                    "edition": i["edition"], "fetched_at": min((r["fetched_at"] for r in i.get("inputs", [])),
                                                               default=i["created_at"]),
                    "created_at": i["created_at"], "raw_inputs": len(i.get("inputs", []))}
                   for s, i in sorted(inputs.snapshots.items())],
        "methodology": {**result.methodology, "path": os.path.relpath(methodology.path, PROJECT_ROOT)
                        if methodology.path else ""},
        "dimension_weights": {"mode": result.dimension_weights_mode,
                              "weights": {k: round(float(v), 6) for k, v in result.dimension_weights.items()}},
        "code_version": code,
        "package_versions": package_versions(),
        "coverage": {"cities": int(len(table)), "indicators": len(methodology.indicators),
                     "values_by_status": {k: int(v) for k, v in status_counts.items()},
                     "warnings": result.warnings},
        "validation": index_report.as_dict(),
        "gawc_tier_differences": [] if tier_diff is None else tier_diff.to_dict(orient="records"),
        "files": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{rid}.", dir=root))
    try:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
        interruption_point("release-files-written")
        if sample:
            atomic_write_text(tmp / "SAMPLE.txt", SAMPLE_NOTICE + "\n")
        prev_path = root / previous if previous and (root / previous / "manifest.json").exists() else None
        atomic_write_json(tmp / "manifest.json", manifest)  # read by the diff and the report
        changes = diff_releases(prev_path, tmp) if prev_path else None
        atomic_write_text(tmp / "CHANGES.md", changes_markdown(changes, rid))
        build_report(tmp, tmp / "report", manifest, methodology, changes)
        for f in sorted(tmp.rglob("*")):
            if f.is_file() and f.name != "manifest.json":
                manifest["files"][str(f.relative_to(tmp))] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
        atomic_write_json(tmp / "manifest.json", manifest)
        interruption_point("release-before-rename")
        os.replace(tmp, root / rid)
    except (OSError, StorageError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"cannot publish release {rid}: {exc}; LATEST still points to {previous}") from exc
    _write_latest(rid)
    return {**manifest, "reused": False, "path": str(root / rid)}


def _write_latest(rid: str) -> None:
    atomic_write_text(releases_dir() / "LATEST", rid + "\n")


def release_path(release_id: str | None = None) -> Path:
    rid = release_id or read_latest_id()
    if not rid:
        raise PipelineError(f"no release yet under {releases_dir()}: run `talent-index refresh` first")
    path = releases_dir() / safe_id(rid, "release id")
    if not (path / "manifest.json").exists():
        known = [m["release_id"] for m in list_releases()]
        raise PipelineError(f"no release {rid!r} under {releases_dir()}; known: {known or 'none'}")
    return path


def verify_release(release_id: str) -> list[str]:
    """Files whose sha256 differs from the manifest (empty when the release is intact)."""
    path = release_path(release_id)
    manifest = json.loads((path / "manifest.json").read_text())
    return [n for n, f in manifest["files"].items()
            if not (path / n).exists() or sha256_file(path / n) != f["sha256"]]


def score(inputs: Inputs, registry: Registry, methodology: Methodology) -> IndexResult:
    return score_index(inputs.values, registry.table, methodology)
