"""One ingest subflow per source: fetch or replay -> raw -> parse -> validate -> Parquet snapshot.

Source-agnostic: what differs between sources is declared by each source module (`SPEC`)."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.runtime import flow_run

from tasks.errors import PipelineError
from tasks.gx_adapter import render_data_docs
from tasks.ingest import core
from tasks.progress import report, report_transient
from tasks.registry.cities import load_registry
from tasks.service.files import file_url
from tasks.service.run_summary import warning_events
from tasks.settings import data_home
from tasks.sources import load_sources_raw, resolve_source, source_spec
from tasks.store.editions import resolve_edition
from tasks.timing import timed
from tasks.validate import ValidationReport

from .quoting import as_is


@task(cache_policy=NO_CACHE)
def fetch_and_parse(source: str, cfg: dict, mode: str) -> core.Fetched:
    """Retries live in the fetcher (one policy per source, errors classified), not here."""
    registry = load_registry()
    with timed("work"):
        fetched = core.fetch_and_parse(source, cfg, mode, registry, progress=report_transient)
    get_run_logger().info(
        "%s: %d responses (%d network requests, %d reused raw snapshots)",
        source,
        len(fetched.raws),
        fetched.requests_made,
        sum(r["reused"] for r in fetched.raws),
    )
    return fetched


@task(cache_policy=NO_CACHE)
def check_vintage(source: str, cfg: dict, fetched: core.Fetched, allow_fallback: bool) -> dict:
    return core.check_vintage(source, cfg, fetched, allow_fallback)


@task(cache_policy=NO_CACHE)
def work_unit(source: str, unit: dict) -> list[dict]:
    """One unit of a source's parallel work (a VNP46A4 tile: the partial sums of every city it
    serves); runs on Dask when the refresh is given a cluster."""
    with timed("work"):
        return source_spec(source).run_work_unit(unit)


def _prepare(source: str, cfg: dict, fetched: core.Fetched) -> dict | None:
    """A source's work units as one mapped task each, then combined (None when it has none)."""
    spec = source_spec(source, cfg)
    registry = load_registry()
    units = spec.work_units(cfg, registry, fetched.parsed)
    if not units:
        return None
    report(f"{source}: {len(units)} work units")
    futures = work_unit.map(unmapped(source), units)
    results = [r for f in futures for r in f.result()]
    return spec.combine_work_units(cfg, registry, fetched.parsed, results)


@task(cache_policy=NO_CACHE)
def tidy(source: str, cfg: dict, fetched: core.Fetched, prepared: dict | None) -> tuple[pd.DataFrame, dict]:
    with timed("work"):
        return core.tidy_source(source, cfg, load_registry(), fetched, prepared)


ROOT_RUN: ContextVar[str | None] = ContextVar("talent_index_root_run", default=None)


def root_run_id() -> str | None:
    """The id of the flow run at the root of this one: what `refresh` put in ROOT_RUN for its
    subflows (`as_root_run`: asking the API walks the tree, two requests a level, for every task
    that asks), else from the API (an ingest run on its own is its own root)."""
    known = ROOT_RUN.get()
    if known:
        return known

    root = flow_run.root_flow_run_id or flow_run.id
    return str(root) if root else None


@contextmanager
def as_root_run():
    """Within it, the current flow run is the root for the tasks of its subflows (ROOT_RUN)."""

    token = ROOT_RUN.set(str(flow_run.id) if flow_run.id else None)
    try:
        yield
    finally:
        ROOT_RUN.reset(token)


def _docs_dir() -> Path:
    """The run's output folder for GX Data Docs: <data home>/runs/<root flow run id>/data-docs."""

    return data_home() / "runs" / (root_run_id() or "local") / "data-docs"


@task(cache_policy=NO_CACHE)
def validate(source: str, cfg: dict, tidy_table: pd.DataFrame, extras: dict) -> list[ValidationReport]:
    report(f"{source}: validating")
    docs = _docs_dir()
    with timed("work", "gx"):
        reports = core.validate_source(source, cfg, load_registry(), tidy_table, extras, docs_dir=docs)

    page = next((r.docs_page for r in reports if r.docs_page), None)
    create_link_artifact(
        key=f"data-docs-{source.replace('_', '-')}",
        link=file_url(docs / (page or "index.html")),
        link_text=f"GX Data Docs of this refresh ({source})",
    )
    return reports


@task(cache_policy=NO_CACHE)
def data_docs() -> str | None:
    """Render the GX Data Docs of this run's validations, once per run (each render rebuilds the index)."""

    with timed("work", "gx"):
        index = render_data_docs(_docs_dir())
    return str(index) if index else None


def _is_root_run() -> bool:
    """Whether this ingest runs on its own (not as a subflow of `refresh`): from the run context,
    without asking the API."""

    ctx = FlowRunContext.get()
    return ctx is None or ctx.flow_run is None or ctx.flow_run.parent_task_run_id is None


@task(cache_policy=NO_CACHE)
def snapshot(
    source: str,
    cfg: dict,
    tidy_table: pd.DataFrame,
    extras: dict,
    raws: list[dict],
    reports: list[ValidationReport],
    vintage: dict,
    mode: str,
) -> dict:
    with timed("work"):
        return core.snapshot_source(
            source,
            cfg,
            tidy_table,
            extras,
            raws,
            reports,
            vintage=vintage,
            mode=mode,
            run_id=root_run_id(),
        )


def snapshot_summary(snap: dict) -> dict:
    """What a subflow returns of its snapshot: its record without the per-response lists (every raw
    input, every validation result), which stay in the snapshot's provenance.json. Prefect walks a
    flow's return value looking for futures, element by element: at 100,000 cities those lists made
    the end of each ingest subflow, and of the refresh, take seconds."""
    return {k: v for k, v in snap.items() if k not in ("inputs", "validation")}


def _emit_warnings(source: str, reports, run_context: dict | None) -> None:
    """A source ingested on its own: its warning event (under `refresh`, the parent emits them once
    the release is out, naming it)."""

    for payload in warning_events({source: [r.as_dict() for r in reports]}, None, run_context or {}):
        emit_event(
            event="talent-index.data-quality.warning",
            resource={"prefect.resource.id": f"talent-index.source.{source}", "prefect.resource.name": source},
            payload=payload,
        )


def source_config(source: str, edition: str, cadence: str = "annual", mode: str = "offline") -> dict:
    raw = load_sources_raw()
    if source not in raw:
        raise PipelineError(f"unknown source {source!r}; configured: {sorted(raw)}")
    return resolve_source(source, raw[source], edition, cadence, mode)


@cache
def ingest_flow(source: str):
    """The ingest subflow of one configured source (made on first use)."""

    @flow(name=f"ingest-{source.replace('_', '-')}", log_prints=True)
    def ingest_source(
        mode: str = "offline",
        edition: str | None = None,
        run_context: dict | None = None,
        cadence: str = "annual",
        allow_vintage_fallback: bool = False,
        cfg: dict | None = None,
    ) -> dict:
        """`cfg`: the source's configuration resolved for the run's edition (the parent flow resolves
        the edition and every source once); run on its own, the flow resolves it."""
        if cfg is None:
            cfg = source_config(source, resolve_edition(edition, mode, cadence), cadence, mode)
        cfg = core.without_secrets(cfg, allow_vintage_fallback)
        if cfg.get("secrets_missing"):
            report(
                f"{source}: {', '.join(cfg['secrets_missing'])} not set: read as {cfg['without_secrets']} (a vintage fallback)"
            )
        report(f"{source}: fetching ({mode}, edition {cfg['edition']})")
        # as_is(): the parsed responses, tables and raw lists are large (10,000 cities: 20,000 items);
        # Prefect would otherwise walk every element looking for futures (seconds per task)
        fetched = fetch_and_parse(source, cfg, mode)
        vintage = check_vintage(source, cfg, as_is(fetched), allow_vintage_fallback)
        prepared = _prepare(source, cfg, fetched)
        tidy_table, extras = tidy(source, cfg, as_is(fetched), as_is(prepared))
        reports = validate(source, cfg, as_is(tidy_table), as_is(extras))
        if _is_root_run():  # run on its own; under `refresh`, the parent renders once for all sources
            data_docs()
        create_markdown_artifact(
            markdown="\n\n".join(r.summary_markdown() for r in reports),
            key=f"dq-{source.replace('_', '-')}",
            description=f"Data-quality summary of {source}",
        )
        summary = core.extra_summary(source, extras, cfg)
        if summary:
            create_markdown_artifact(
                markdown=summary,
                key=f"{source.replace('_', '-')}-summary",
                description=f"What {source} held beyond the index cities",
            )
        if _is_root_run() and not any(r.errors for r in reports):  # a failing source alerts through its run
            _emit_warnings(source, reports, run_context)
        for r in reports:
            r.raise_for_errors()
        snap = snapshot(
            source, cfg, as_is(tidy_table), as_is(extras), as_is(fetched.raws), as_is(reports), vintage, mode
        )
        report(
            f"{source}: snapshot {snap['snapshot_id']} ({'unchanged' if snap.get('reused') else 'new'}, "
            f"vintage {vintage['found']})"
        )
        return {
            "source": source,
            "snapshot": snapshot_summary(snap),
            "warnings": [w.as_dict() for r in reports for w in r.warnings],
            "reports": [r.as_dict() for r in reports],
            "requests_made": fetched.requests_made,
            "responses": len(fetched.raws),
            "vintage": vintage,
        }

    return ingest_source
