"""Run the service on this machine: a Prefect server on loopback, the work pool, the deployments,
the automations and a worker (`talent-index server up`), and stop them in order (`server down`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .errors import PipelineError
from .secrets import redact
from .settings import PROJECT_ROOT

POOL = "talent-index"


def state_dir() -> Path:
    return Path(os.environ.get("TALENT_INDEX_SERVICE_DIR", PROJECT_ROOT / ".prefect" / "service"))


def _prefect() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def _env(api_url: str, database_url: str | None = None) -> dict:
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_URL": api_url.removesuffix("/api"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "TALENT_INDEX_CHECKOUT": str(PROJECT_ROOT),
    }
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    return env


def _run(args: list[str], env: dict, what: str) -> str:
    res = subprocess.run(args, env=env, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    if res.returncode != 0:
        raise PipelineError(f"{what} failed (exit {res.returncode}): {redact((res.stderr or res.stdout)[-1500:])}")
    return res.stdout


def _start(name: str, args: list[str], env: dict) -> int:
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True
        )
    (d / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _stop(name: str, timeout: float = 30.0) -> str:
    pidfile = state_dir() / f"{name}.pid"
    if not pidfile.exists():
        return f"{name}: not running"
    pid = int(pidfile.read_text())
    if not _alive(pid):
        pidfile.unlink()
        return f"{name}: was not running (stale pid {pid})"
    os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return f"{name}: stopped (pid {pid})"


def wait_healthy(api_url: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if requests.get(f"{api_url}/health", timeout=2).ok:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.5)
    raise PipelineError(
        f"the Prefect server at {api_url} did not become healthy in {timeout:.0f}s "
        f"({last}); see {state_dir() / 'server.log'}"
    )


def up(
    port: int = 4200, database_url: str | None = None, notify: str | None = "webhook", progress=lambda m: None
) -> dict:
    """Start server, create the work pool, deploy, apply automations, start a worker."""
    api_url = f"http://127.0.0.1:{port}/api"
    env = _env(api_url, database_url)
    if (state_dir() / "server.pid").exists() and _alive(int((state_dir() / "server.pid").read_text())):
        raise PipelineError(
            f"a server started from this checkout is already running "
            f"(pid file {state_dir() / 'server.pid'}); run `talent-index server down` first"
        )
    progress(f"starting the Prefect server on 127.0.0.1:{port} ({'PostgreSQL' if database_url else 'SQLite'})")
    _start("server", [_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env)
    wait_healthy(api_url)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        progress(f"creating work pool {POOL!r} (process)")
        ensure_work_pool()
        progress("deploying prefect.yaml (annual-full-refresh, quarterly-numbeo-refresh)")
        _run([_prefect(), "--no-prompt", "deploy", "--all"], env, "prefect deploy")
        applied = []
        if notify:
            progress(f"applying automations (notify: {notify})")
            from .alerts import apply_automations

            applied = apply_automations(notify)
    progress("starting a worker")
    _start("worker", [_prefect(), "worker", "start", "--pool", POOL], env)
    info = {
        "api_url": api_url,
        "ui_url": api_url.removesuffix("/api"),
        "pool": POOL,
        "automations": applied,
        "database": "postgresql" if database_url else "sqlite",
    }
    (state_dir() / "service.json").write_text(json.dumps(info, indent=1))
    return info


def ensure_work_pool() -> None:
    """The process work pool the deployments run on (created once; an existing one is kept)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        except ObjectAlreadyExists:
            pass


def down() -> list[str]:
    """Stop the worker first, then the server."""
    return [_stop("worker"), _stop("server")]
