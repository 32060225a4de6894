"""Publish an immutable release: score tables, coverage, history and the manifest, written atomically.

A release folder is written under a temporary name and renamed into place only when complete;
`releases/LATEST` is then replaced atomically. An unchanged rerun finds the release with the same
inputs fingerprint and publishes nothing new. Documents derived from the release's files (the
changes, the HTML report) are made by `renderers` the caller passes, reading only those files, so
that they can be rebuilt from any release (`talent-index report`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from scoring import IndexResult, Methodology
from tasks import csvsafe
from tasks.errors import PipelineError, StorageError
from tasks.memory import release_freed_memory
from tasks.progress import report
from tasks.provenance import code_version, package_versions
from tasks.publish.analysis import fidelity_files, printed_editions
from tasks.publish.categories import as_texts, categories_of, is_categorical, text_dtype, with_values
from tasks.publish.gather import Inputs
from tasks.registry.cities import Registry
from tasks.settings import PROJECT_ROOT, safe_id
from tasks.sources import source_spec
from tasks.sources.base import STATUS_COLUMNS, Source
from tasks.store.home import require_current_format
from tasks.store.releases import (
    RELEASE_LOG,
    edition_indexes,
    find_release,
    latest_by_edition,
    previous_release,
    read_latest_id,
    releases_dir,
    verify_release,
)
from tasks.store.storage import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_stream,
    atomic_write_text,
    frame_fingerprint,
    interruption_point,
    make_temp_dir,
    parquet_bytes,
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
HISTORY_COLUMNS = ["edition", "release_id", "city_id", "name_en", "final_score", "rank_international", "rank_domestic"]
Renderer = Callable[[Path], object]  # writes documents into a release folder from the files already in it


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
    parts += [f"methodology:{methodology.sha256}", f"overrides:{json.dumps(methodology.overrides, sort_keys=True)}"]
    parts.append(f"code:{code}")
    return sha256_bytes("\n".join(parts).encode())


def index_table(result: IndexResult, registry: Registry) -> pd.DataFrame:
    meta = registry.table[["name_en", "name_zh", "country", "iso2", "domestic"]]
    out = meta.join(result.index, how="inner").reset_index().rename(columns={"index": "city_id"})
    lead = ["city_id", "name_en", "name_zh", "country", "iso2", "domestic", "final_score"]
    lead += ["rank_international", "rank_domestic"]
    rest = [c for c in out.columns if c not in lead]
    return out[lead + rest].sort_values("rank_international").reset_index(drop=True)


def validate_index(table: pd.DataFrame, registry: Registry) -> ValidationReport:
    params = {"registry_city_ids": registry.ids, "registry_count": len(registry.ids)}
    return run_suite(table, load_suite("index"), source="index", params=params)


def indicators_file(result: IndexResult, coverage: pd.DataFrame) -> bytes:
    """indicators.parquet: the scores' long table with each value's status, as texts (its copies of
    the long table are gone when it returns, not held while the release is written)."""
    texts = text_dtype(result.indicators["city_id"])
    status = coverage[["city_id", "indicator", "status"]].astype({"city_id": texts, "indicator": texts})
    return parquet_bytes(as_texts(result.indicators).merge(status, on=["city_id", "indicator"], how="left"))


def coverage_table(result: IndexResult, inputs: Inputs, sample_status: pd.DataFrame | None) -> pd.DataFrame:
    """Per city and indicator: real / proxy / illustrative / imputed, where the value came from and,
    for a proxy, what it stands in for and how it was transformed. A proxy the methodology refuses
    is scored as missing, so it shows as imputed (or dropped)."""
    prov = inputs.provenance
    for col in STATUS_COLUMNS:
        if col not in prov:
            prov = prov.assign(**{col: "real" if col == "status" else ""})
    left = result.indicators[["city_id", "dimension", "indicator", "value", "imputed"]]
    texts = text_dtype(left["city_id"])  # what the edited columns are (the others are categories)
    keys = ["city_id", "indicator"]
    # joined on categorical keys with the same categories: a join on texts held them twice over
    cats = {k: pd.CategoricalDtype(categories_of(prov[k]).union(categories_of(left[k]))) for k in keys}
    cov = left.astype(cats).merge(prov.astype(cats), on=keys, how="left")
    # texts stay categories (repeated on every row, held as texts, they were most of the release's
    # memory), which the CSV writes as the same texts; the status is counted and compared in many
    # places, and is a text
    if is_categorical(cov["status"]):
        cov["status"] = cov["status"].astype(texts)
    cov["status"] = cov["status"].fillna("real")
    cov["vintage"] = cov["edition"]
    if sample_status is not None:  # the bundled sample says per value what it is (values.csv)...
        at = cov["city_id"].isin(sample_status["city_id"]).to_numpy().nonzero()[0]  # the rows of its cities
        sample = sample_status.set_index(keys).reindex(pd.MultiIndex.from_frame(as_texts(cov[keys].iloc[at])))
        # ...for the values whose source does not grade them itself (a source's own grade, a proxy
        # fed by a source and a refused proxy are what the gathered rows say)
        graded = cov["graded"].iloc[at].fillna(False).astype(bool).to_numpy()
        ungraded = ~graded & sample["status"].notna().to_numpy()
        for col in ("status", "stands_for", "transform", "vintage"):
            values = sample[col].to_numpy()[ungraded]
            cov[col] = with_values(cov[col], pd.unique(values[pd.notna(values)]))
            cov.iloc[at[ungraded], cov.columns.get_loc(col)] = values
        # where the sample names no provenance of its own, the value's location
        said = sample["value_provenance"].notna().to_numpy()
        provenance = sample["value_provenance"].to_numpy()[said]
        location = cov["location"] if is_categorical(cov["location"]) else cov["location"].astype("category")
        cov["value_provenance"] = with_values(location, pd.unique(provenance))
        cov.iloc[at[said], cov.columns.get_loc("value_provenance")] = provenance
    cov.loc[cov["imputed"], "status"] = "imputed"
    return cov


def history_table(edition: str, release_id: str, table: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    """Each city's final score and rank and its dimension scores and ranks, in every edition with a
    published release (its latest release) and in this one."""
    cols = HISTORY_COLUMNS[2:] + [f"{d}_{k}" for d in dims for k in ("score", "rank_international", "rank_domestic")]
    frames = [table.reindex(columns=cols).assign(edition=edition, release_id=release_id)]
    frames += [idx.assign(edition=ed, release_id=rid) for ed, rid, idx in edition_indexes(cols, skip=edition)]
    hist = pd.concat(frames, ignore_index=True)
    return hist[["edition", "release_id", *cols]].sort_values(["edition", "rank_international"]).reset_index(drop=True)


def source_additions(inputs: Inputs, coverage: pd.DataFrame) -> tuple[dict[str, bytes], list[dict], list[dict]]:
    """What each source adds to the release (`Source.release_tables`, `Source.release_notes`): the
    files, their manifest entries and the notes."""
    files: dict[str, bytes] = {}
    tables: list[dict] = []
    notes: list[dict] = []
    for source in sorted(inputs.snapshots):
        spec = source_spec(source)
        adds_tables = type(spec).release_tables is not Source.release_tables  # else its table is not read
        if adds_tables and source in inputs.tables:
            for t in spec.release_tables(inputs.tables[source]):
                files[t.file] = csvsafe.to_csv(t.table, index=False).encode()
                tables.append({"source": source, "file": t.file, "title": t.title, "headings": t.headings})
        if type(spec).release_notes is not Source.release_notes:  # only a source with notes filters its rows
            notes += [{"source": source, "text": n} for n in spec.release_notes(coverage[coverage["source"] == source])]
    return files, tables, notes


def new_release_id(edition: str, sample: bool, today: str | None = None) -> str:
    today = today or datetime.now(UTC).strftime("%Y-%m-%d")
    base = f"{edition}-sample-{today}" if sample else f"{edition}-{today}"
    safe_id(base, "release id")
    rid, n = base, 1
    while (releases_dir() / rid).exists():
        n += 1
        rid = f"{base}-{n}"
    return rid


def _append_release_log(entry: dict) -> None:
    path = releases_dir() / RELEASE_LOG
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    sep = b"" if not old or old.endswith(b"\n") else b"\n"
    atomic_write_bytes(path, old + sep + json.dumps({"time": utc_now(), **entry}, sort_keys=True).encode() + b"\n")


def _point_latest() -> None:
    """LATEST: the latest release of the newest edition published."""
    latest = latest_by_edition()
    if latest:
        rid = latest[max(latest)]
        if read_latest_id() != rid:
            atomic_write_text(releases_dir() / "LATEST", rid + "\n")


def publish(
    result: IndexResult,
    inputs: Inputs,
    registry: Registry,
    methodology: Methodology,
    *,
    sample: bool,
    edition: str | None = None,
    index_report: ValidationReport,
    extra_files: Callable[[pd.DataFrame], dict[str, bytes]] | None = None,
    sample_status: pd.DataFrame | None = None,
    today: str | None = None,
    renderers: tuple[Renderer, ...] = (),
) -> dict:
    """Write the release folder atomically, log it and move LATEST; returns the manifest.

    `extra_files(coverage)` returns more files by name (called only when a new release is written);
    each of `renderers` then writes its documents into the folder from the files in it."""
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
    table = index_table(result, registry)
    coverage = coverage_table(result, inputs, sample_status)
    # the large CSV tables are written chunk by chunk into the release folder, never held as text
    files: dict[str, bytes | Callable[[BinaryIO], None]] = {
        "index.parquet": parquet_bytes(table),
        "index.csv": csvsafe.csv_writer(table, index=False, float_format="%.4f"),
        "indicators.parquet": indicators_file(result, coverage),
        "indicator_weights.csv": result.indicator_weights.to_csv(index=False).encode(),
        "clusters.csv": result.clusters.to_csv(index=False, float_format="%.4f").encode(),
        "coverage.csv": csvsafe.csv_writer(coverage, index=False),
        "history.parquet": parquet_bytes(history_table(edition, rid, table, methodology.dimension_ids)),
    }
    if methodology.path and Path(methodology.path).exists():
        files["methodology.yaml"] = Path(methodology.path).read_bytes()  # the exact method of this release
    added, source_tables, notes = source_additions(inputs, coverage)
    files.update(added)
    fidelity = fidelity_files(edition, table, coverage)
    files.update(fidelity)
    files.update(extra_files(coverage) if extra_files else {})
    release_freed_memory()  # the analyses' temporaries (the Monte Carlo's rank table)
    manifest = _manifest(rid, edition, sample, fingerprint, inputs, result, methodology, code, table, coverage)
    manifest.update(validation=index_report.as_dict(), source_tables=source_tables, notes=notes)
    manifest["fidelity"] = (
        {"compared_with": f"the published {edition} index", "file": next(iter(fidelity))}
        if fidelity
        else {
            "compared_with": None,
            "note": f"nothing printed to compare edition {edition} with (the report printed "
            f"{', '.join(printed_editions())})",
        }
    )
    report(f"writing release {rid}")
    tmp = make_temp_dir(f".{rid}.", root)
    try:
        for name, data in files.items():
            if isinstance(data, bytes):
                atomic_write_bytes(tmp / name, data)
            else:
                atomic_write_stream(tmp / name, data)
        interruption_point("release-files-written")
        if sample:
            atomic_write_text(tmp / "SAMPLE.txt", SAMPLE_NOTICE + "\n")
        atomic_write_json(tmp / "manifest.json", manifest)  # read by the renderers
        del files
        release_freed_memory()
        for render in renderers:
            render(tmp)
        manifest["files"] = {
            str(f.relative_to(tmp)): {"sha256": sha256_file(f), "bytes": f.stat().st_size}
            for f in sorted(tmp.rglob("*"))
            if f.is_file() and f.name != "manifest.json"
        }
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


def _manifest(rid, edition, sample, fingerprint, inputs, result, methodology, code, table, coverage) -> dict:
    status_counts = coverage["status"].value_counts().to_dict()
    return {
        "release_id": rid,
        "edition": edition,
        "created_at": utc_now(),
        "sample": sample,
        "notice": SAMPLE_NOTICE if sample else "",
        "previous_release": previous_release(edition),
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
        "files": {},
    }


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
