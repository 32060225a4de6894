"""The one door to Prefect's internals, and which Prefect API a run reports to: a real server
(PREFECT_API_URL) or, when none is set (as in `make run`), a temporary one the CLI starts for its
runs. Light to import: the CLI checks these before it imports the flows.

Everything else uses Prefect's documented API (flows, tasks, artifacts, events, the client,
settings). What this module relies on beyond it is listed in `INTERNALS`, each with a check the
tests run (`tests/test_framework_internals.py`), and why the documented route does not serve."""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import inspect
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tasks.errors import PipelineError
from tasks.internals import Internal, source_says


def require_real_server(address: str) -> None:
    """Dask only against a real Prefect server: the temporary one a flow starts without
    PREFECT_API_URL keeps its state in SQLite, which locks when Dask workers report task runs."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value() or PREFECT_API_URL.value() == _TEMPORARY.get("api_url"):
        raise PipelineError(
            f"--dask {address}: the Dask task runner needs a real Prefect server; set "
            "PREFECT_API_URL (e.g. after `talent-index server up`) — the temporary server's "
            "SQLite database locks under Dask workers"
        )


_TEMPORARY: dict[str, str] = {}  # the API URL of this process's temporary server, once started
# what Prefect sets for its own temporary server: no UI, and the server knows it is temporary
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}


def free_port() -> int:
    """A loopback port nobody listens on now, once a connection to it has gone through: a sandbox
    whose loopback interface is down binds fine but connects nowhere ("Network is unreachable"),
    which this says at once instead of a server start that never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        with socket.socket() as probe:
            probe.settimeout(2)
            probe.connect(sock.getsockname())
        return sock.getsockname()[1]


def server_command(port: int) -> list[str]:
    """Prefect's server on a loopback port, as Prefect starts its temporary one: uvicorn on Prefect's
    app, errors only. Prefect is located, not imported."""
    prefect = importlib.util.find_spec("prefect")
    if prefect is None or not prefect.origin:
        raise PipelineError("Prefect is not installed in this environment (run `make install`)")
    args = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.origin).parent.parent)]
    args += ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port)]
    return args + ["--log-level", "error", "--lifespan", "on"]


class TemporaryServer:
    """The temporary Prefect server of a run without PREFECT_API_URL, as Prefect's own starts it
    (uvicorn serving Prefect's app on a free loopback port, without the UI, its database in
    PREFECT_HOME) but started from here: Prefect's own is a class of its server package, whose
    import costs this process seconds of CPU for a server that runs in another one. Started in the
    background (it comes up while this process imports the flows); stopped at exit, as Prefect
    stops its own."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.api_url = ""
        self.error: str | None = None
        self._thread = threading.Thread(target=self._start, name="prefect-temporary-server", daemon=True)

    def start(self) -> TemporaryServer:
        atexit.register(self.stop)
        self._thread.start()
        return self

    def _start(self) -> None:
        try:
            self._start_server()
        except Exception as exc:  # noqa: BLE001 - said by join() in one line, never a thread's traceback
            self.error = (
                f"Prefect's temporary server could not start ({type(exc).__name__}: {exc}); is the loopback "
                "interface up? Set PREFECT_API_URL to a running Prefect server instead"
            )

    def _start_server(self) -> None:
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, get_current_settings

        env = {
            **os.environ,
            **SERVER_ENV,
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        deadline = time.monotonic() + float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        while time.monotonic() < deadline:
            port = free_port()
            self.api_url = f"http://127.0.0.1:{port}/api"
            self.process = subprocess.Popen(server_command(port), env=env)
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with direct.open(f"{self.api_url}/health", timeout=2) as res:
                        if res.status == 200:
                            return
                except OSError:
                    time.sleep(0.1)
            if self.process.poll() != 3:  # 3: the port was taken meanwhile, so another one
                break
        code = self.process.poll() if self.process else None
        self.error = (
            f"Prefect's temporary server did not come up at {self.api_url} "
            + (f"(it exited with status {code})" if code is not None else "in time")
            + "; set PREFECT_API_URL to a running Prefect server, or see above for its error"
        )

    def join(self) -> None:
        """Wait until the server answers; PipelineError when it did not come up."""
        self._thread.join()
        if self.error:
            raise PipelineError(self.error)
        _TEMPORARY["api_url"] = self.api_url

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_temporary_server() -> TemporaryServer | None:
    """Without PREFECT_API_URL, a temporary server for the runs of this process, started in the
    background (join it, or run under `on_the_temporary_server`, before the first run). None with a
    real server, or when the user turned the temporary server off."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    return TemporaryServer().start()


@contextmanager
def on_the_temporary_server(server: TemporaryServer | None):
    """The runs inside report to `server` once it is up, and send no heartbeats: a heartbeat lets a
    server mark a run whose process died as crashed, but the temporary server dies with this
    process, so nobody would read them, and each flow run waits up to a second at its end for its
    heartbeat thread to stop. With None (a real server: the service, a deployment), unchanged."""
    if server is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    server.join()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def next_cron_dates(cron: str, timezone: str, n: int = 2) -> list:
    """The next `n` fire times of a cron schedule, by Prefect's own rules (its server-side schedule
    schema: the client's has no dates), so that `server status` shows what the server will run."""
    from prefect.server.schemas.schedules import CronSchedule  # the server's package: imported when used

    dates: Any = CronSchedule(cron=cron, timezone=timezone or "UTC").get_dates(n)
    if inspect.iscoroutine(dates):  # sync_compatible hands back a coroutine next to a running loop
        with ThreadPoolExecutor(1) as pool:
            dates = pool.submit(asyncio.run, dates).result()
    return list(dates)


def _cron_dates_work() -> str | None:
    try:
        dates = next_cron_dates("0 3 * * *", "UTC", 2)
    except Exception as exc:  # noqa: BLE001 - what changed, in the message
        return f"{type(exc).__name__}: {exc}"
    return None if len(dates) == 2 and dates[0] < dates[1] else f"got {dates!r}"


SERVER = "server/api/server.py"
INTERNALS = [
    Internal(
        "PREFECT__SERVER_EPHEMERAL and PREFECT__SERVER_FINAL, read by prefect.server.api.server.create_app",
        "the temporary server is started as Prefect starts its own (SERVER_ENV): Prefect's class for it "
        "(SubprocessASGIServer) lives in its server package, whose import costs this process seconds",
        lambda: source_says(
            "prefect", SERVER, 'os.getenv("PREFECT__SERVER_EPHEMERAL")', 'os.getenv("PREFECT__SERVER_FINAL")'
        ),
    ),
    Internal(
        "uvicorn --factory prefect.server.api.server:create_app, as SubprocessASGIServer runs it",
        "server_command() is Prefect's own command line for its temporary server",
        lambda: source_says(
            "prefect", SERVER, '"prefect.server.api.server:create_app"', '"--factory"', "def create_app("
        ),
    ),
    Internal(
        "exit status 3 of the server process: its port was taken (SubprocessASGIServer starts another)",
        "the temporary server retries on another port exactly then, as Prefect's does",
        lambda: source_says("prefect", SERVER, "self.server_process.poll() == 3"),
    ),
    Internal(
        "prefect.server.schemas.schedules.CronSchedule.get_dates",
        "`server status` shows the next runs by Prefect's own cron rules; the client's schedule has no dates",
        _cron_dates_work,
    ),
]
