"""Score the latest validated snapshots and publish a release (with its artifacts)."""

from __future__ import annotations

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from scoring import IndexResult, Methodology, load_methodology
from tasks.progress import report
from tasks.publish.analysis import release_analyses
from tasks.publish.gather import Inputs, gather_inputs
from tasks.publish.gather import score as score_inputs
from tasks.publish.publisher import index_table, validate_index
from tasks.publish.publisher import publish as publish_folder
from tasks.publish.sample import sample_status
from tasks.registry.cities import Registry, load_registry
from tasks.report.render import render_release
from tasks.service.run_summary import ranking_rows
from tasks.store.releases import read_latest_id, release_path
from tasks.timing import timed

from .quoting import as_is


def publish_scored(
    result: IndexResult,
    inputs: Inputs,
    registry: Registry,
    methodology: Methodology,
    *,
    analyses: bool = True,
    draws: int | None = None,
    today: str | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Validate the index, then publish the release: its files, the analyses (audit, uncertainty,
    regressions; `draws` Monte Carlo draws, default by size) and the documents built from its files
    (CHANGES.md, the report). A release built from offline recordings is a sample. The one sequence
    the flows and the tests publish with."""
    table = index_table(result, registry)
    with timed("gx"):
        index_report = validate_index(table, registry)
    index_report.raise_for_errors()
    sample = any(r.get("mode") == "offline" for s in inputs.snapshots.values() for r in s.get("inputs", []))

    def analysis_files(coverage: pd.DataFrame) -> dict:
        report("analyses: audit of the 2020 figures, Monte Carlo uncertainty, regressions")
        return release_analyses(result, methodology, coverage, draws=draws)

    manifest = publish_folder(
        result,
        inputs,
        registry,
        methodology,
        sample=sample,
        edition=inputs.edition,
        index_report=index_report,
        extra_files=analysis_files if analyses else None,
        sample_status=sample_status(inputs.edition) if sample else None,
        today=today,
        renderers=(render_release,),
    )
    return manifest, table


def gather_score_publish(
    registry: Registry,
    methodology: Methodology,
    *,
    edition: str | None = None,
    as_of: str | None = None,
    cadence: str = "annual",
    allow_vintage_fallback: bool = False,
    analyses: bool = True,
    draws: int | None = None,
    today: str | None = None,
) -> dict:
    """Gather the latest ingests of `edition`, score them and publish (without Prefect): the manifest."""
    inputs = gather_inputs(
        registry,
        methodology,
        edition=edition,
        as_of=as_of,
        cadence=cadence,
        allow_vintage_fallback=allow_vintage_fallback,
    )
    result = score_inputs(inputs, registry, methodology)
    return publish_scored(result, inputs, registry, methodology, analyses=analyses, draws=draws, today=today)[0]


@task(cache_policy=NO_CACHE)
def gather(
    edition: str | None, as_of: str | None = None, cadence: str = "annual", allow_vintage_fallback: bool = False
) -> Inputs:
    with timed("work"):
        return gather_inputs(
            load_registry(),
            load_methodology(),
            edition=edition,
            as_of=as_of,
            cadence=cadence,
            allow_vintage_fallback=allow_vintage_fallback,
        )


@task(cache_policy=NO_CACHE)
def score(inputs: Inputs, methodology_path: str | None = None) -> IndexResult:
    with timed("work"):
        return score_inputs(inputs, load_registry(), load_methodology(methodology_path))


@task(cache_policy=NO_CACHE)
def publish_release(
    result: IndexResult, inputs: Inputs, methodology_path: str | None = None
) -> tuple[dict, pd.DataFrame]:
    with timed("work"):
        return publish_scored(result, inputs, load_registry(), load_methodology(methodology_path))


@flow(name="publish-release", log_prints=True)
def publish(
    edition: str | None = None,
    as_of: str | None = None,
    methodology_path: str | None = None,
    cadence: str = "annual",
    allow_vintage_fallback: bool = False,
) -> dict:
    """Score the latest ingest of edition `edition` of every source and publish it (default: the
    newest edition ingested)."""
    report(f"scoring the latest ingests of edition {edition or '(newest)'}")
    inputs = gather(edition, as_of, cadence, allow_vintage_fallback)
    result = score(as_is(inputs), methodology_path)  # as_is(): large, nothing in them for Prefect to resolve
    report("publishing the release")
    manifest, table = publish_release(as_is(result), as_is(inputs), methodology_path)
    logger = get_run_logger()
    if manifest.get("reused"):
        logger.info("inputs unchanged: release %s already holds them", manifest["release_id"])
    rows = ranking_rows(table)
    create_table_artifact(
        key="ranking",
        table=rows,
        description=f"Overall ranking of release {manifest['release_id']}"
        + (" (SAMPLE, not an official index)" if manifest["sample"] else "")
        + (
            f": the first {len(rows):,} of {len(table):,} cities (every city: index.csv)"
            if len(rows) < len(table)
            else ""
        ),
    )
    path = release_path(manifest["release_id"])
    create_link_artifact(
        key="release-report",
        link=(path / "report" / "index.html").as_uri(),
        link_text=f"report of release {manifest['release_id']}",
        description=f"Release folder: {path}",
    )
    if result.warnings:
        create_markdown_artifact(key="scoring-warnings", markdown="\n".join(f"- {w}" for w in result.warnings))
    return {
        "release_id": manifest["release_id"],
        "path": str(path),
        "reused": manifest.get("reused", False),
        "sample": manifest["sample"],
        "edition": manifest["edition"],
        "latest": read_latest_id(),
        "vintage_fallbacks": manifest.get("vintage_fallbacks", []),
    }
