"""The parent flow: ingest every (or the chosen) source, then score and publish a release."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.errors import PipelineError
from tasks.progress import report
from tasks.sources import SOURCES
from tasks.storage import refresh_lock, remove_stale_temporaries

from .ingest import INGEST_FLOWS
from .publish import publish


class RefreshFailed(PipelineError):
    """One or more sources failed: nothing was published."""


@flow(name="refresh", log_prints=True)
def refresh(mode: str = "offline", sources: list[str] | None = None, edition: str = "2020",
            publish_release: bool = True, wait_for_lock: bool = False) -> dict:
    """Ingest the sources (all by default), then publish a release from the latest validated
    snapshot of every source. A source that fails blocks the release; earlier data stays intact."""
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
            state = INGEST_FLOWS[source](mode=mode, return_state=True)
            if state.is_completed():
                results[source] = state.result()
            else:
                try:
                    state.result()
                except Exception as exc:  # noqa: BLE001 - collected and re-raised as one message
                    failures.append(f"{source}: {exc}")
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
