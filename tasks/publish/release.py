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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from scoring import IndexResult, Methodology, score_index
from tasks import csvsafe
from tasks.errors import PipelineError, StorageError, VintageMismatch
from tasks.publish.proxies import apply_proxies
from tasks.registry.cities import Registry
from tasks.report.changes import changes_markdown, diff_releases
from tasks.report.html import build_report
from tasks.settings import PROJECT_ROOT, data_home, safe_id
from tasks.sources.base import STATUS_COLUMNS
from tasks.sources.gawc import tier_differences
from tasks.store.storage import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    frame_fingerprint,
    interruption_point,
    make_temp_dir,
    parquet_bytes,
    read_snapshot,
    sha256_bytes,
    sha256_file,
    utc_now,
)
from tasks.validate import ValidationReport, load_suite, run_suite

SAMPLE_NOTICE = (
    "SAMPLE RELEASE — built from the bundled offline recordings, in which many values are "
    "illustrative (see coverage). It is a demonstration of the pipeline, not an official "
    "City Talent Retention Index."
)
PACKAGES = [
    "prefect",
    "great-expectations",
    "pandas",
    "numpy",
    "pyarrow",
    "requests",
    "beautifulsoup4",
    "lxml",
    "rasterio",
    "scipy",
    "typer",
]


def releases_dir() -> Path:
    return data_home() / "releases"


def code_version() -> str:
    try:
        sha = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
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
    values: pd.DataFrame  # registry city x indicator
    snapshots: dict[str, dict]  # source -> snapshot provenance
    gawc_meta: pd.DataFrame | None
    provenance: pd.DataFrame  # city_id, indicator, source, name_in_source, location, edition, status…
    edition: str = ""
    ingests: dict[str, dict] = field(default_factory=dict)  # source -> its ingest-log entry
    fallbacks: list[dict] = field(default_factory=list)  # sources whose vintage is not the policy's


def indicator_sources(methodology: Methodology) -> list[str]:
    """Sources the methodology's indicators (and their proxies) come from, in order of first use."""
    return list(dict.fromkeys([i.source for i in methodology.indicators] + methodology.proxy_sources()))


def metadata_sources() -> list[str]:
    """Configured sources that describe cities without feeding an indicator (GaWC)."""
    from tasks.sources import all_sources

    return [n for n, spec in all_sources().items() if not spec.feeds_indicators]


def _expected_vintage(source: str, edition: str, cadence: str) -> str:
    from tasks.sources import load_sources_raw, resolve_source, vintage_policy

    try:
        raw = load_sources_raw()
        return vintage_policy(resolve_source(source, raw[source], edition, cadence)).describe()
    except (PipelineError, KeyError) as exc:
        return f"unknown ({exc})"


def newest_ingested_edition(sources: list[str]) -> str | None:
    from tasks.store.storage import ingested_editions

    eds = sorted({e for s in sources for e in ingested_editions(s)})
    return eds[-1] if eds else None


def gather_inputs(
    registry: Registry,
    methodology: Methodology,
    edition: str | None = None,
    as_of: str | None = None,
    allow_vintage_fallback: bool = False,
    cadence: str = "annual",
) -> Inputs:
    """The latest ingest of edition `edition` (by ingest order, up to `as_of`) of every source the
    methodology names, as one indicator table.

    A source with no ingest of the edition, or whose ingested vintage is not what its policy
    expects, is refused (one line per source) unless `allow_vintage_fallback`: then the latest
    ingest of the newest earlier edition is used and the fallback is recorded."""
    from tasks.store.storage import latest_ingest

    sources = indicator_sources(methodology)
    edition = str(edition or newest_ingested_edition(sources) or "")
    if not edition:
        raise PipelineError(
            f"no validated snapshot of any source under {data_home() / 'snapshots'}: run `talent-index refresh` first"
        )
    snaps: dict[str, dict] = {}
    ingests: dict[str, dict] = {}
    frames: list[pd.DataFrame] = []
    fallbacks: list[dict] = []
    problems: list[str] = []
    for source in sources + [m for m in metadata_sources() if m not in sources]:
        required = source in sources
        found = latest_ingest(source, edition=edition, as_of=as_of)
        # what this edition's ingest expected (its settings may have differed from the policy resolved
        # now: online, without a secret), before `found` may become an older edition's ingest below
        own_expected = found[0].get("expected_vintage") if found else None
        reason = None
        if found is None:
            older = list(_older_editions(source, edition))
            reason = f"no ingest of edition {edition}" + (
                f" (ingested editions: {', '.join(older)})" if older else " (never ingested)"
            )
            if older and allow_vintage_fallback:
                found = latest_ingest(source, edition=older[-1], as_of=as_of)
        elif not found[0].get("vintage_ok", True):
            reason = f"the ingest of edition {edition} found vintage {found[0].get('vintage')}"
        if reason is not None:
            expected = own_expected or _expected_vintage(source, edition, cadence)
            got = found[0].get("vintage") if found else None
            if found is None or not allow_vintage_fallback:
                if required or found is not None:  # a metadata source may be missing altogether
                    problems.append(f"source {source}: expected vintage {expected}, found {got or 'none'} — {reason}")
                continue
            fallbacks.append(
                {
                    "source": source,
                    "expected": expected,
                    "found": got,
                    "edition_used": str(found[0]["edition"]),
                    "reason": reason,
                }
            )
        assert found is not None  # every path without an ingest left through `continue` above
        entry, info = found
        snaps[source], ingests[source] = info, entry
        for group in entry.get("fallback_values") or []:  # values the source's data itself holds from older vintages
            values = group["values"]
            fallbacks.append(
                {
                    "source": source,
                    "expected": entry.get("expected_vintage") or _expected_vintage(source, edition, cadence),
                    "found": str(group.get("vintage", "")),
                    "edition_used": str(group.get("edition_used", "")),
                    "reason": f"{group['reason']}: {', '.join(values[:5])}{' …' if len(values) > 5 else ''}",
                    "values": values,
                }
            )
        if required:
            frames.append(read_snapshot(info).assign(source=source))
    if problems:
        raise VintageMismatch(
            f"edition {edition} cannot be published as labelled (use --allow-vintage-fallback "
            "to publish with the fallbacks listed):\n  " + "\n  ".join(problems)
        )
    everything = pd.concat(frames, ignore_index=True)
    everything = everything[everything["city_id"].isin(registry.ids)].copy()
    # graded: the source said how good the value is (else it is taken as real; the bundled sample's
    # values.csv grades those in a sample release's coverage)
    everything["graded"] = everything["status"].notna() if "status" in everything else False
    for col in [*STATUS_COLUMNS, "boundary"]:  # a source that does not grade its values publishes real ones
        default = "real" if col == "status" else ""
        everything[col] = everything[col].fillna(default) if col in everything else default
    source_of = {i.id: i.source for i in methodology.indicators}
    tidy = apply_proxies(
        everything[everything["indicator"].map(source_of) == everything["source"]], everything, methodology
    )
    missing = sorted(set(source_of) - set(tidy["indicator"]))
    if missing:
        raise PipelineError(
            "indicators not supplied by the source the methodology names "
            f"(indicator: source): { ({k: source_of[k] for k in missing}) }"
        )
    refused = (tidy["status"] == "proxy") & ~tidy["indicator"].map(methodology.allows_proxy)
    tidy.loc[refused, "value"] = float("nan")  # treated as missing: the missing-values policy applies
    tidy.loc[refused, "status"] = "proxy refused"
    emptied = sorted(set(tidy.loc[refused, "indicator"]) - set(tidy.loc[tidy["value"].notna(), "indicator"]))
    if emptied:
        raise PipelineError(
            f"indicator {', '.join(emptied)}: every value is a proxy and the methodology refuses proxies for it "
            f"({methodology.path or 'methodology'}: proxies): allow them, or supply real values"
        )
    values = tidy.pivot_table(index="city_id", columns="indicator", values="value", aggfunc="first", dropna=False)
    values = values.reindex(index=registry.ids, columns=list(source_of))
    values.index.name = "city_id"
    gawc_meta = read_snapshot(snaps["gawc"]) if "gawc" in snaps else None
    prov = tidy[["city_id", "indicator", "source", "edition", "name_in_source", "location", *STATUS_COLUMNS, "graded"]]
    return Inputs(
        values=values,
        snapshots=snaps,
        gawc_meta=gawc_meta,
        provenance=prov.reset_index(drop=True),
        edition=edition,
        ingests=ingests,
        fallbacks=fallbacks,
    )


def _older_editions(source: str, edition: str) -> list[str]:
    from tasks.store.storage import ingested_editions

    return [e for e in ingested_editions(source) if e < edition]


def inputs_fingerprint(
    inputs: Inputs, methodology: Methodology, code: str, registry: Registry, history: dict[str, str] | None = None
) -> str:
    """Identity of a release: its edition, input snapshots, fallbacks, city registry, methodology and
    code, and the other editions' releases its history holds (`history`: edition -> release id; a
    release whose history would now hold more is another release, so a backfill never leaves LATEST
    with a partial history)."""
    parts = [f"edition:{inputs.edition}"]
    parts += [f"history:{e}:{rid}" for e, rid in sorted((history or {}).items())]
    parts += [f"{s}:{i['content_fingerprint']}" for s, i in sorted(inputs.snapshots.items())]
    parts += [f"fallback:{json.dumps(f, sort_keys=True)}" for f in inputs.fallbacks]
    parts.append(f"registry:{frame_fingerprint(registry.table.reset_index())}")
    parts += [
        f"methodology:{methodology.sha256}",
        f"overrides:{json.dumps(methodology.overrides, sort_keys=True)}",
        f"code:{code}",
    ]
    return sha256_bytes("\n".join(parts).encode())


# --------------------------------------------------------------------------- the release log
# `releases/log.jsonl`: every publication (new or reused) in order. LATEST names the latest release
# of the newest edition; the latest release of each edition feeds the history across editions.
RELEASE_LOG = "log.jsonl"


def read_release_log() -> list[dict]:
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


def _append_release_log(entry: dict) -> None:
    path = releases_dir() / RELEASE_LOG
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    sep = b"" if not old or old.endswith(b"\n") else b"\n"
    atomic_write_bytes(path, old + sep + json.dumps({"time": utc_now(), **entry}, sort_keys=True).encode() + b"\n")


def latest_by_edition() -> dict[str, str]:
    """edition -> the release most recently published for it (that still exists)."""
    out: dict[str, str] = {}
    for e in read_release_log():
        if (releases_dir() / e["release_id"] / "manifest.json").exists():
            out[str(e["edition"])] = e["release_id"]
    return out


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


def new_release_id(edition: str, sample: bool, today: str | None = None) -> str:
    today = today or datetime.now(UTC).strftime("%Y-%m-%d")
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
    lead = [
        "city_id",
        "name_en",
        "name_zh",
        "country",
        "iso2",
        "domestic",
        "final_score",
        "rank_international",
        "rank_domestic",
    ]
    rest = [c for c in out.columns if c not in lead]
    return out[lead + rest].sort_values("rank_international").reset_index(drop=True)


def validate_index(table: pd.DataFrame, registry: Registry) -> ValidationReport:
    return run_suite(
        table,
        load_suite("index"),
        source="index",
        params={"registry_city_ids": registry.ids, "registry_count": len(registry.ids)},
    )


def coverage_table(result: IndexResult, inputs: Inputs, sample_status: pd.DataFrame | None) -> pd.DataFrame:
    """Per city and indicator: real / proxy / illustrative / imputed, where the value came from and,
    for a proxy, what it stands in for and how it was transformed. A proxy the methodology refuses
    is scored as missing, so it shows as imputed (or dropped)."""
    prov = inputs.provenance
    for col in STATUS_COLUMNS:
        if col not in prov:
            prov = prov.assign(**{col: "real" if col == "status" else ""})
    cov = result.indicators[["city_id", "dimension", "indicator", "value", "imputed"]].merge(
        prov, on=["city_id", "indicator"], how="left"
    )
    cov["status"] = cov["status"].fillna("real")
    cov["vintage"] = cov["edition"]
    if sample_status is not None:  # the bundled sample says per value what it is (values.csv)...
        sample = sample_status.set_index(["city_id", "indicator"]).reindex(
            pd.MultiIndex.from_frame(cov[["city_id", "indicator"]])
        )
        # ...for the values whose source does not grade them itself (a source's own grade, a proxy
        # fed by a source and a refused proxy are what the gathered rows say)
        ungraded = (~cov["graded"].fillna(False).astype(bool)).to_numpy() & sample["status"].notna().to_numpy()
        for col in ("status", "stands_for", "transform", "vintage"):
            cov.loc[ungraded, col] = sample[col].to_numpy()[ungraded]
        cov["value_provenance"] = sample["value_provenance"].to_numpy()
        cov["value_provenance"] = cov["value_provenance"].fillna(cov["location"])
    cov.loc[cov["imputed"], "status"] = "imputed"
    return cov


def _previous_release(edition: str) -> str | None:
    """What a new release of `edition` is compared with: the latest release of the same edition,
    else the latest of the newest earlier edition (None when there is none)."""
    latest = latest_by_edition()
    if edition in latest:
        return latest[edition]
    older = sorted(e for e in latest if e < edition)
    return latest[older[-1]] if older else None


def _point_latest() -> None:
    """LATEST: the latest release of the newest edition published."""
    latest = latest_by_edition()
    if latest:
        rid = latest[max(latest)]
        if read_latest_id() != rid:
            atomic_write_text(releases_dir() / "LATEST", rid + "\n")


HISTORY_COLUMNS = ["edition", "release_id", "city_id", "name_en", "final_score", "rank_international", "rank_domestic"]


def history_table(edition: str, release_id: str, table: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    """Each city's final score and rank and its dimension scores and ranks, in every edition with a
    published release (its latest release) and in this one."""
    cols = HISTORY_COLUMNS[2:] + [f"{d}_{k}" for d in dims for k in ("score", "rank_international", "rank_domestic")]
    frames = [table.reindex(columns=cols).assign(edition=edition, release_id=release_id)]
    for ed, rid in sorted(latest_by_edition().items()):
        if ed == edition:
            continue
        try:
            idx = read_release_file(rid, "index.parquet")
        except (PipelineError, OSError, ValueError):
            continue  # a damaged or removed release is left out of the history (verify names it)
        frames.append(idx.reindex(columns=cols).assign(edition=ed, release_id=rid))
    hist = pd.concat(frames, ignore_index=True)
    return hist[["edition", "release_id", *cols]].sort_values(["edition", "rank_international"]).reset_index(drop=True)


def publish(
    result: IndexResult,
    inputs: Inputs,
    registry: Registry,
    methodology: Methodology,
    *,
    sample: bool,
    edition: str | None = None,
    index_report: ValidationReport,
    extra_files=None,
    sample_status: pd.DataFrame | None = None,
    today: str | None = None,
) -> dict:
    """Write the release folder atomically, log it and move LATEST; returns the manifest.

    `extra_files` maps file names to bytes, or is a callable returning that mapping (called only
    when a new release is actually written).
    """
    from tasks.store.home import require_current_format

    require_current_format()
    edition = str(edition or inputs.edition)
    if inputs.edition and edition != inputs.edition:
        raise PipelineError(f"release edition {edition} but its inputs were gathered for edition {inputs.edition}")
    inputs.edition = edition
    code = code_version()
    history = {e: rid for e, rid in latest_by_edition().items() if e != edition}
    fingerprint = inputs_fingerprint(inputs, methodology, code, registry, history)
    existing = find_release(fingerprint)
    if existing and not verify_release(existing["release_id"]):
        _append_release_log({"release_id": existing["release_id"], "edition": edition, "reused": True})
        _point_latest()
        return {**existing, "reused": True}
    root = releases_dir()
    root.mkdir(parents=True, exist_ok=True)
    rid = new_release_id(edition, sample, today)
    previous = _previous_release(edition)
    table = index_table(result, registry)
    coverage = coverage_table(result, inputs, sample_status)
    files: dict[str, bytes] = {
        "index.parquet": parquet_bytes(table),
        "index.csv": csvsafe.to_csv(table, index=False, float_format="%.4f").encode(),
        "indicators.parquet": parquet_bytes(
            result.indicators.merge(
                coverage[["city_id", "indicator", "status"]], on=["city_id", "indicator"], how="left"
            )
        ),
        "indicator_weights.csv": result.indicator_weights.to_csv(index=False).encode(),
        "clusters.csv": result.clusters.to_csv(index=False, float_format="%.4f").encode(),
        "coverage.csv": csvsafe.to_csv(coverage, index=False).encode(),
        "history.parquet": parquet_bytes(history_table(edition, rid, table, methodology.dimension_ids)),
    }
    if methodology.path and Path(methodology.path).exists():
        files["methodology.yaml"] = Path(methodology.path).read_bytes()  # the exact method of this release
    tier_diff = None
    if inputs.gawc_meta is not None:
        tier_diff = tier_differences(inputs.gawc_meta)
        files["gawc_tier_differences.csv"] = csvsafe.to_csv(tier_diff, index=False).encode()
    from tasks.publish.analysis import fidelity_files, printed_editions

    fidelity = fidelity_files(edition, table, coverage)
    files.update(fidelity)
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
        "inputs": [_manifest_input(s, i, inputs.ingests.get(s, {})) for s, i in sorted(inputs.snapshots.items())],
        "vintage_fallbacks": inputs.fallbacks,
        "methodology": {
            **result.methodology,
            "path": os.path.relpath(methodology.path, PROJECT_ROOT) if methodology.path else "",
        },
        "dimension_weights": {
            "mode": result.dimension_weights_mode,
            "weights": {k: round(float(v), 6) for k, v in result.dimension_weights.items()},
        },
        "code_version": code,
        "package_versions": package_versions(),
        "coverage": {
            "cities": int(len(table)),
            "indicators": len(methodology.indicators),
            "values_by_status": {k: int(v) for k, v in status_counts.items()},
            "warnings": result.warnings,
        },
        "validation": index_report.as_dict(),
        "fidelity": (
            {"compared_with": f"the published {edition} index", "file": next(iter(fidelity))}
            if fidelity
            else {
                "compared_with": None,
                "note": f"nothing printed to compare edition {edition} with (the report printed "
                f"{', '.join(printed_editions())})",
            }
        ),
        "gawc_tier_differences": [] if tier_diff is None else tier_diff.to_dict(orient="records"),
        "files": {},
    }
    from tasks.progress import report

    report(f"writing release {rid}")
    tmp = make_temp_dir(f".{rid}.", root)
    try:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
        interruption_point("release-files-written")
        if sample:
            atomic_write_text(tmp / "SAMPLE.txt", SAMPLE_NOTICE + "\n")
        prev_path = root / previous if previous else None
        atomic_write_json(tmp / "manifest.json", manifest)  # read by the diff and the report
        changes = _diff_or_none(prev_path, tmp)
        atomic_write_text(tmp / "CHANGES.md", changes_markdown(changes, rid))
        build_report(tmp, tmp / "report", manifest, methodology, changes)
        for f in sorted(tmp.rglob("*")):
            if f.is_file() and f.name != "manifest.json":
                manifest["files"][str(f.relative_to(tmp))] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
        atomic_write_json(tmp / "manifest.json", manifest)
        interruption_point("release-before-rename")
        os.replace(tmp, root / rid)
    except BaseException as exc:  # whatever stopped it (a bad file, a signal), no half release stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError | StorageError):
            raise StorageError(
                f"cannot publish release {rid}: {exc}; LATEST still points to {read_latest_id()}"
            ) from exc
        raise
    _append_release_log({"release_id": rid, "edition": edition, "reused": False})
    _point_latest()
    return {**manifest, "reused": False, "path": str(root / rid)}


def _manifest_input(source: str, info: dict, entry: dict) -> dict:
    raws = info.get("inputs", [])
    return {
        "source": source,
        "snapshot_id": info["snapshot_id"],
        "path": info["path"],
        "sha256": info["sha256"],
        "edition": info["edition"],
        "vintage": entry.get("vintage", info["edition"]),
        "expected_vintage": entry.get("expected_vintage", info["edition"]),
        "vintage_notes": entry.get("vintage_notes") or [],
        "ingested_at": entry.get("time", info["created_at"]),
        "ingest_mode": entry.get("mode"),
        "fetched_at": entry.get("accessed_at") or min((r["fetched_at"] for r in raws), default=info["created_at"]),
        "created_at": info["created_at"],
        "raw_inputs": len(raws),
        "origin": info.get("origin") or {},
    }


def _diff_or_none(prev_path: Path | None, new: Path) -> dict | None:
    """The changes against the previous release; None (reported as such) when there is none or it is
    damaged: publishing never depends on an earlier release being readable."""
    if prev_path is None or not (prev_path / "manifest.json").exists():
        return None
    try:
        if verify_release(prev_path.name):
            return None
        return diff_releases(prev_path, new)
    except (PipelineError, OSError, ValueError, KeyError):
        return None


def read_release_file(release_id: str, name: str):
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


def score(inputs: Inputs, registry: Registry, methodology: Methodology) -> IndexResult:
    return score_index(inputs.values, registry.table, methodology)
