"""The parent flow: ingest every (or the chosen) source for one edition, then score and publish."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.runtime import deployment, flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Completed

from tasks.errors import PipelineError
from tasks.ingest.parse_pool import parse_workers, start_workers, stop_workers
from tasks.memory import release_freed_memory
from tasks.progress import report
from tasks.registry.cities import load_registry
from tasks.service.files import file_url
from tasks.service.prefect_api import require_real_server
from tasks.service.run_summary import failure_labels, quality_rows, ranking_rows, warning_events
from tasks.settings import data_home
from tasks.sources import CADENCES, all_sources
from tasks.store.editions import resolve_edition
from tasks.store.home import require_current_format
from tasks.store.storage import refresh_lock, remove_stale_temporaries

from .ingest import as_root_run, data_docs, ingest_flow, source_config
from .publish import publish


class RefreshFailed(PipelineError):
    """One or more sources failed: nothing was published."""


def _run_context() -> dict:
    """Who is running (for alert payloads): deployment, flow run and its UI link, in the form the
    failure alert's `flow_run | ui_url` gives (<UI>/runs/flow-run/<id>), so both alerts link alike."""
    try:
        ui = (PREFECT_UI_URL.value() or "").rstrip("/")
        return {
            "deployment": deployment.name,
            "flow_run": flow_run.name,
            "url": f"{ui}/runs/flow-run/{flow_run.id}" if ui and flow_run.id else None,
        }
    except Exception:  # noqa: BLE001 - outside a run (tests calling .fn)
        return {}


def dask_task_runner(address: str):
    """Prefect's DaskTaskRunner on an existing cluster, for the sources' parallel work units."""
    require_real_server(address)

    from prefect_dask import DaskTaskRunner  # noqa: PLC0415 - dask's import, only with --dask (benchmarks/README.md)

    return DaskTaskRunner(address=address)


@flow(name="refresh", log_prints=True)
def refresh(
    mode: str = "offline",
    sources: list[str] | None = None,
    edition: str = "auto",
    cadence: str = "annual",
    allow_vintage_fallback: bool = False,
    publish_release: bool = True,
    wait_for_lock: bool = False,
    data_home: str | None = None,
    recordings: str | None = None,
    dask_address: str | None = None,
) -> dict:
    """Ingest the sources (all by default) for one edition of the index, then publish a release from
    the latest ingest of that edition of every source. A source that fails blocks the release;
    earlier data stays intact. A run that published with data-quality warnings ends in the state
    "Completed with warnings".

    Args:
        mode: online (fetch from the sources), offline (replay the recordings) or record (fetch and
            save new recordings).
        sources: only these sources (default: every configured one); the release combines the
            latest ingest of the edition of every source.
        edition: a year, or auto: offline the newest recorded edition, online this year, in the
            quarterly cadence the edition of the latest release.
        cadence: annual or quarterly; a source's edition policy may differ by cadence (Numbeo's
            ranking is the edition's January one, or the current one).
        allow_vintage_fallback: publish even where a source's vintage is not what its policy
            expects for the edition (each fallback listed in the manifest and the report).
        publish_release: false to ingest and snapshot only.
        wait_for_lock: wait for a running refresh of the same data home instead of failing.
        data_home: the data home of this run (default TALENT_INDEX_HOME, else ./data).
        recordings: the recordings an offline run replays (default TALENT_INDEX_RECORDINGS, else
            ./data/recordings): a folder per edition with its index.json.
        dask_address: tcp://host:port of a Dask scheduler to run the sources' parallel work
            (night-light tiles) on; needs a real Prefect server.
    """

    if data_home:
        os.environ["TALENT_INDEX_HOME"] = data_home
    if recordings:
        os.environ["TALENT_INDEX_RECORDINGS"] = recordings
    if cadence not in CADENCES:
        raise PipelineError(f"unknown cadence {cadence!r}; expected one of {CADENCES}")
    context = _run_context()

    configured = all_sources()
    chosen = list(sources or configured)
    unknown = [s for s in chosen if s not in configured]
    if unknown:
        raise PipelineError(f"unknown sources {unknown}; configured: {sorted(configured)}")
    edition = resolve_edition(edition, mode, cadence)
    with refresh_lock(wait=wait_for_lock), as_root_run():
        require_current_format()
        logger = get_run_logger()
        stale = remove_stale_temporaries()
        if stale:
            logger.warning("removed %d temporary files left by an interrupted run: %s", len(stale), stale[:5])
        report(f"edition {edition} ({cadence}, {mode})")
        results: dict[str, dict] = {}
        failed: dict[str, BaseException] = {}
        cfgs: dict[str, dict | None] = {}
        for source in chosen:
            try:
                cfgs[source] = source_config(source, edition, cadence, mode)  # resolved once, passed down
            except PipelineError:
                cfgs[source] = None  # the subflow resolves it again and fails with the message, as its run's state
        _start_parse_workers({s: configured[s] for s in chosen}, cfgs, mode, dask_address)
        try:
            for n, source in enumerate(chosen, start=1):
                report(f"[{n}/{len(chosen)}] ingesting {source}")
                subflow = ingest_flow(source)
                cfg = cfgs[source]
                if dask_address and configured[source].parallel:
                    subflow = subflow.with_options(task_runner=dask_task_runner(dask_address))
                state = subflow(
                    mode=mode,
                    edition=edition,
                    run_context=context,
                    cadence=cadence,
                    allow_vintage_fallback=allow_vintage_fallback,
                    cfg=cfg,
                    return_state=True,
                )
                load_registry().forget_lookups()  # the source's name lookups (the registry is cached)
                release_freed_memory()  # the source's parsed pages: not under the next source's peak
                if state.is_completed():
                    results[source] = state.result()
                else:
                    try:
                        state.result()
                    except Exception as exc:  # noqa: BLE001 - collected and re-raised as one message
                        failed[source] = exc
        finally:
            stop_workers()
        docs_index = data_docs()  # GX Data Docs of every validation above, failed ones included
        reports = {s: r["reports"] for s, r in results.items()}
        _quality_artifact(reports, failed, docs_index)
        if failed:
            _label_failure(failed, docs_index)
            raise RefreshFailed(
                "refresh failed, no release published:\n  " + "\n  ".join(f"{s}: {e}" for s, e in failed.items())
            )
        warnings = {s: r["warnings"] for s, r in results.items() if r["warnings"]}
        for s, ws in warnings.items():
            logger.warning("%s: %d data-quality warnings: %s", s, len(ws), [w["expectation"] for w in ws])
        out = {
            "edition": edition,
            "cadence": cadence,
            "sources": results,
            "warnings": warnings,
            "requests_made": sum(r["requests_made"] for r in results.values()),
        }
        if publish_release:
            out["release"] = publish(edition=edition, cadence=cadence, allow_vintage_fallback=allow_vintage_fallback)
            _release_artifacts(out["release"], sum(len(w) for w in warnings.values()))
        _emit_warnings(reports, (out.get("release") or {}).get("release_id"), context, docs_index)
        if warnings:  # visibly different in the run list from a clean run
            n = sum(len(w) for w in warnings.values())
            # a flow returning a state ends in it; its callers still get `out` (the state's data)
            return Completed(  # type: ignore[return-value]
                name="Completed with warnings",
                data=out,
                message=f"{n} data-quality warnings in {', '.join(sorted(warnings))}"
                + (f"; published {out['release']['release_id']}" if out.get("release") else ""),
            )
        return out


def _start_parse_workers(specs: dict, cfgs: dict, mode: str, dask_address: str | None) -> None:
    """The ingest's worker processes started now, for the sources whose pages per city they would
    parse (tasks/ingest/parse_pool.py): their start overlaps the sources before them."""
    pooled = [
        (source, cfg)
        for source, cfg in cfgs.items()
        if cfg is not None
        and specs[source].city_pages_in_workers
        and specs[source].pages_per_city(cfg)
        and not (dask_address and specs[source].parallel)  # their work runs on the cluster
    ]
    if pooled:
        start_workers(parse_workers(len(load_registry().ids), mode), pooled)


def _docs_url(index: str | None):
    """page of this run's Data Docs (relative to its folder) -> a URL a person can open."""

    def url(page: str | None) -> str:
        if not index:
            return ""
        return file_url(Path(index).parent / (page or "index.html"))

    return url


def _quality_artifact(reports: dict, failed: dict, docs_index: str | None) -> None:
    """One data-quality table across sources on the parent run."""

    rows = quality_rows(reports, failed, _docs_url(docs_index))
    n_err = sum(1 for r in rows if r["severity"] == "error")
    n_warn = sum(1 for r in rows if r["severity"] == "warning")
    create_table_artifact(
        key="data-quality",
        table=rows,
        description=f"Data quality of this refresh: {n_err} errors, {n_warn} warnings across "
        f"{len(reports) + len(failed)} sources",
    )


def _label_failure(failed: dict, docs_index: str | None) -> None:
    """Labels on the run for its failure alert: source, suite, check, offending values, what is
    allowed, the Data Docs page and the data home."""

    if not flow_run.id:
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run_labels(flow_run.id, failure_labels(failed, _docs_url(docs_index), str(data_home())))


def _release_artifacts(release: dict, n_warnings: int) -> None:
    """The ranking (top of it) and the report's link on the parent run, where a person looks first."""

    path = Path(release["path"])
    table = pd.read_parquet(path / "index.parquet").head(30)
    flags = ("SAMPLE (not an official index), " if release["sample"] else "") + f"{n_warnings} data-quality warnings"
    create_table_artifact(
        key="ranking",
        table=ranking_rows(table),
        description=f"Edition {release['edition']}, release {release['release_id']} ({flags})"
        + (" — inputs unchanged, the existing release" if release["reused"] else ""),
    )
    create_link_artifact(
        key="release-report",
        link=file_url(path / "report" / "index.html"),
        link_text=f"Report of release {release['release_id']}",
        description=f"Edition {release['edition']}; {flags}",
    )


def _emit_warnings(reports: dict, release_id: str | None, context: dict, docs_index: str | None) -> None:
    """One event per source with warnings (the data-quality automation alerts on it), naming the
    release that went out with them."""

    for payload in warning_events(reports, release_id, context, _docs_url(docs_index), str(data_home())):
        emit_event(
            event="talent-index.data-quality.warning",
            resource={
                "prefect.resource.id": f"talent-index.source.{payload['source']}",
                "prefect.resource.name": payload["source"],
            },
            payload=payload,
        )
