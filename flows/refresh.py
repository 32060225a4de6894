"""The parent flow: ingest every (or the chosen) source, then score and publish a release."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.errors import PipelineError
from tasks.progress import report
from tasks.sources import SOURCES
from tasks.storage import refresh_lock, remove_stale_temporaries

from .ingest import INGEST_FLOWS, data_docs
from .publish import publish


class RefreshFailed(PipelineError):
    """One or more sources failed: nothing was published."""


def _run_context() -> dict:
    """Who is running (for alert payloads): deployment, flow run and its UI link."""
    try:
        from prefect.runtime import deployment, flow_run

        return {"deployment": deployment.name, "flow_run": flow_run.name, "url": flow_run.ui_url}
    except Exception:  # noqa: BLE001 - outside a run (tests calling .fn)
        return {}


def require_real_server(address: str) -> None:
    """Dask only against a real Prefect server: the temporary one a flow starts without
    PREFECT_API_URL keeps its state in SQLite, which locks when Dask workers report task runs."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise PipelineError(f"--dask {address}: the Dask task runner needs a real Prefect server; set "
                            "PREFECT_API_URL (e.g. after `talent-index server up`) — the temporary server's "
                            "SQLite database locks under Dask workers")


def dask_task_runner(address: str):
    """Prefect's DaskTaskRunner on an existing cluster, for the per-tile night-light work."""
    require_real_server(address)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


@flow(name="refresh", log_prints=True)
def refresh(mode: str = "offline", sources: list[str] | None = None, edition: str = "2020",
            publish_release: bool = True, wait_for_lock: bool = False, data_home: str | None = None,
            recordings: str | None = None, dask_address: str | None = None) -> dict:
    """Ingest the sources (all by default), then publish a release from the latest validated
    snapshot of every source. A source that fails blocks the release; earlier data stays intact.

    `data_home` and `recordings` override TALENT_INDEX_HOME / TALENT_INDEX_RECORDINGS for this run
    (a deployment run executes in its own process). `dask_address` (tcp://host:port of a Dask
    scheduler) runs the per-tile night-light work on that cluster."""
    import os

    if data_home:
        os.environ["TALENT_INDEX_HOME"] = data_home
    if recordings:
        os.environ["TALENT_INDEX_RECORDINGS"] = recordings
    context = _run_context()
    chosen = list(sources or SOURCES)
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown:
        raise PipelineError(f"unknown sources {unknown}; known: {sorted(SOURCES)}")
    with refresh_lock(wait=wait_for_lock):
        logger = get_run_logger()
        stale = remove_stale_temporaries()
        if stale:
            logger.warning("removed %d temporary files left by an interrupted run: %s", len(stale), stale[:5])
        results, failures = {}, []
        for n, source in enumerate(chosen, start=1):
            report(f"[{n}/{len(chosen)}] ingesting {source}")
            ingest_flow = INGEST_FLOWS[source]
            if dask_address and source == "night_lights":
                ingest_flow = ingest_flow.with_options(task_runner=dask_task_runner(dask_address))
            state = ingest_flow(mode=mode, run_context=context, return_state=True)
            if state.is_completed():
                results[source] = state.result()
            else:
                try:
                    state.result()
                except Exception as exc:  # noqa: BLE001 - collected and re-raised as one message
                    failures.append(f"{source}: {exc}")
        data_docs()  # GX Data Docs of every validation above, failed ones included
        if failures:
            raise RefreshFailed("refresh failed, no release published:\n  " + "\n  ".join(failures))
        warnings = {s: r["warnings"] for s, r in results.items() if r["warnings"]}
        for s, ws in warnings.items():
            logger.warning("%s: %d data-quality warnings: %s", s, len(ws), [w["expectation"] for w in ws])
        out = {"sources": results, "warnings": warnings,
               "requests_made": sum(r["requests_made"] for r in results.values())}
        if publish_release:
            out["release"] = publish(edition=edition)
        return out
