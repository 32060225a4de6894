"""Which Prefect API a run reports to: a real server (PREFECT_API_URL) or the temporary one Prefect
starts for a flow when none is set (as `make run` does). Light to import: the CLI checks these before
it imports the flows."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from .errors import PipelineError


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


def start_temporary_server() -> threading.Thread | None:
    """Without PREFECT_API_URL the first flow run starts Prefect's temporary server (a subprocess
    that needs seconds to come up) and waits for it. Started here, from a thread, it comes up while
    this process imports the flows; join the thread before the first run. The server is Prefect's
    own singleton, so the run finds it started (and stops it at exit, as it would have). A start
    that fails here is tried again by the run, which then reports the error. None with a real server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer  # imported here, not in the thread

    server = SubprocessASGIServer()

    def start() -> None:
        try:
            server.start()
        except Exception:  # noqa: BLE001 - the flow run starts it again and reports why it fails
            pass

    thread = threading.Thread(target=start, name="prefect-temporary-server", daemon=True)
    thread.start()
    return thread


@contextmanager
def without_heartbeats_on_a_temporary_server():
    """Flow runs against the temporary server send no heartbeats. A heartbeat lets a server mark a
    run whose process died as crashed; the temporary server dies with this process, so nobody would
    read them, and each flow run waits up to a second at its end for its heartbeat thread to stop.
    Against a real server (PREFECT_API_URL: the service, a deployment) heartbeats stay on."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
