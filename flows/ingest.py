"""One ingest subflow per source: fetch or replay -> raw -> parse -> validate -> Parquet snapshot."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from tasks import ingest as core
from tasks.cities import load_registry
from tasks.errors import FetchError, ReplayMissingError
from tasks.progress import report, report_transient
from tasks.timing import timed
from tasks.sources import SOURCES, load_sources_config


def _retry_on_fetch_error(task, task_run, state) -> bool:
    """Retry the whole fetch step only for network faults, never for a missing recording or bad layout."""
    try:
        state.result()
    except ReplayMissingError:
        return False
    except FetchError:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=_retry_on_fetch_error)
def fetch_and_parse(source: str, cfg: dict, mode: str):
    registry = load_registry()
    with timed("work"):
        fetched = core.fetch_and_parse(source, cfg, mode, registry, progress=report_transient)
    get_run_logger().info("%s: %d responses (%d network requests, %d reused raw snapshots)", source,
                          len(fetched.raws), fetched.requests_made, sum(r["reused"] for r in fetched.raws))
    return fetched


@task(cache_policy=NO_CACHE)
def tile_zonal(job: dict) -> list[dict]:
    """One VNP46A4 tile: partial night-light sums of every city it serves (runs on Dask when the
    refresh is given a cluster)."""
    from tasks.sources import night_lights as nl

    with timed("work"):
        return nl.tile_partials(**job)


def _zonal_by_tile(cfg: dict, fetched):
    """VNP46A4 format: the per-tile work as one mapped task per tile, then the per-city sums."""
    import dataclasses

    from tasks.sources import night_lights as nl

    registry = load_registry()
    jobs = nl.tile_jobs(cfg, registry, fetched.parsed)
    report(f"night_lights: zonal sums on {len(jobs)} tiles")
    futures = tile_zonal.map(jobs)
    partials = [p for f in futures for p in f.result()]
    return dataclasses.replace(fetched, parsed=nl.combine_partials(cfg, registry, partials))


@task(cache_policy=NO_CACHE)
def tidy(source: str, cfg: dict, fetched):
    with timed("work"):
        return core.tidy_source(source, cfg, load_registry(), fetched)


def _docs_dir():
    """The run's output folder for GX Data Docs: <data home>/runs/<root flow run id>/data-docs."""
    from prefect.runtime import flow_run

    from tasks.settings import data_home

    root = flow_run.root_flow_run_id or flow_run.id or "local"
    return data_home() / "runs" / str(root) / "data-docs"


@task(cache_policy=NO_CACHE)
def validate(source: str, cfg: dict, tidy_table, extras):
    report(f"{source}: validating")
    docs = _docs_dir()
    with timed("work", "gx"):
        reports = core.validate_source(source, cfg, load_registry(), tidy_table, extras, docs_dir=docs)
    create_link_artifact(key=f"data-docs-{source.replace('_', '-')}", link=(docs / "index.html").as_uri(),
                         link_text=f"GX Data Docs of this refresh ({source})")
    return reports


@task(cache_policy=NO_CACHE)
def data_docs() -> str | None:
    """Render the GX Data Docs of this run's validations, once per run (each render rebuilds the index)."""
    from tasks.validate import render_data_docs

    with timed("work", "gx"):
        index = render_data_docs(_docs_dir())
    return str(index) if index else None


def _is_root_run() -> bool:
    from prefect.runtime import flow_run

    return not flow_run.root_flow_run_id or flow_run.root_flow_run_id == flow_run.id


@task(cache_policy=NO_CACHE)
def snapshot(source: str, cfg: dict, tidy_table, extras, raws, reports):
    with timed("work"):
        return core.snapshot_source(source, cfg, tidy_table, extras, raws, reports)


def _emit_warnings(source: str, reports, run_context: dict | None) -> None:
    """One custom event per source with warnings, for the data-quality automation to alert on."""
    from prefect.events import emit_event

    from tasks.secrets import redact

    warnings = [{"suite": r.suite, "expectation": w.expectation, "column": w.column,
                 "offending": [redact(str(o)) for o in w.offending[:20]]} for r in reports for w in r.warnings]
    if not warnings:
        return
    ctx = run_context or {}
    emit_event(event="talent-index.data-quality.warning",
               resource={"prefect.resource.id": f"talent-index.source.{source}", "prefect.resource.name": source},
               payload={"source": source, "suite": ", ".join(sorted({w["suite"] for w in warnings})),
                        "warnings": warnings, "deployment": ctx.get("deployment"), "flow_run": ctx.get("flow_run"),
                        "url": ctx.get("url")})


def make_ingest_flow(source: str):
    @flow(name=f"ingest-{source.replace('_', '-')}", log_prints=True)
    def ingest_source(mode: str = "offline", edition: str | None = None, run_context: dict | None = None) -> dict:
        cfg = load_sources_config()[source]
        if edition:
            cfg = {**cfg, "edition": edition}
        report(f"{source}: fetching ({mode})")
        # quote(): the parsed responses, tables and raw lists are large (10,000 cities: 20,000 items);
        # Prefect would otherwise walk every element looking for futures (seconds per task)
        fetched = fetch_and_parse(source, cfg, mode)
        if source == "night_lights" and any(r.kind == "vnp46a4-tile" for r in fetched.parsed):
            fetched = _zonal_by_tile(cfg, fetched)
        tidy_table, extras = tidy(source, cfg, quote(fetched))
        reports = validate(source, cfg, quote(tidy_table), quote(extras))
        if _is_root_run():  # run on its own; under `refresh`, the parent renders once for all sources
            data_docs()
        create_markdown_artifact(markdown="\n\n".join(r.summary_markdown() for r in reports),
                                 key=f"dq-{source.replace('_', '-')}",
                                 description=f"Data-quality summary of {source}")
        summary = core.extra_summary(source, extras)
        if summary:
            create_markdown_artifact(markdown=summary, key=f"{source.replace('_', '-')}-summary",
                                     description=f"What {source} held beyond the index cities")
        if not any(r.errors for r in reports):  # a failing source alerts through its failed run instead
            _emit_warnings(source, reports, run_context)
        for r in reports:
            r.raise_for_errors()
        snap = snapshot(source, cfg, quote(tidy_table), quote(extras), quote(fetched.raws), quote(reports))
        report(f"{source}: snapshot {snap['snapshot_id']} ({'unchanged' if snap.get('reused') else 'new'})")
        return {"source": source, "snapshot": snap, "warnings": [w.as_dict() for r in reports for w in r.warnings],
                "requests_made": fetched.requests_made, "responses": len(fetched.raws)}

    return ingest_source


INGEST_FLOWS = {name: make_ingest_flow(name) for name in SOURCES}
