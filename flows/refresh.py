"""The parent flow: ingest every (or the chosen) source for one edition, then score and publish."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.errors import PipelineError
from tasks.progress import report
from tasks.sources import CADENCES, all_sources
from tasks.storage import refresh_lock, remove_stale_temporaries

from .ingest import data_docs, ingest_flow
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
        raise PipelineError(
            f"--dask {address}: the Dask task runner needs a real Prefect server; set "
            "PREFECT_API_URL (e.g. after `talent-index server up`) — the temporary server's "
            "SQLite database locks under Dask workers"
        )


def dask_task_runner(address: str):
    """Prefect's DaskTaskRunner on an existing cluster, for the sources' parallel work units."""
    require_real_server(address)
    from prefect_dask import DaskTaskRunner

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
    earlier data stays intact.

    `edition`: a year, or `auto` (offline: the newest recorded edition; online: this year; the
    quarterly cadence: the edition of the latest release). `cadence`: `annual` or `quarterly` (each
    source's edition policy may differ by cadence: Numbeo's ranking is the edition's January one,
    or the current one). `allow_vintage_fallback`: publish even where a source's vintage is not
    what its policy expects for the edition (listed in the manifest and report).
    `data_home` and `recordings` override TALENT_INDEX_HOME / TALENT_INDEX_RECORDINGS for this run
    (a deployment run executes in its own process). `dask_address` (tcp://host:port of a Dask
    scheduler) runs the sources' parallel work (night-light tiles) on that cluster."""
    import os

    from tasks.editions import resolve_edition
    from tasks.home import require_current_format

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
    with refresh_lock(wait=wait_for_lock):
        require_current_format()
        logger = get_run_logger()
        stale = remove_stale_temporaries()
        if stale:
            logger.warning("removed %d temporary files left by an interrupted run: %s", len(stale), stale[:5])
        report(f"edition {edition} ({cadence}, {mode})")
        results, failures = {}, []
        for n, source in enumerate(chosen, start=1):
            report(f"[{n}/{len(chosen)}] ingesting {source}")
            subflow = ingest_flow(source)
            if dask_address and configured[source].parallel:
                subflow = subflow.with_options(task_runner=dask_task_runner(dask_address))
            state = subflow(
                mode=mode,
                edition=edition,
                run_context=context,
                cadence=cadence,
                allow_vintage_fallback=allow_vintage_fallback,
                return_state=True,
            )
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
        out = {
            "edition": edition,
            "cadence": cadence,
            "sources": results,
            "warnings": warnings,
            "requests_made": sum(r["requests_made"] for r in results.values()),
        }
        if publish_release:
            out["release"] = publish(edition=edition, cadence=cadence, allow_vintage_fallback=allow_vintage_fallback)
        return out
