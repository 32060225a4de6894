"""One Prefect server on loopback for the whole test session, shared by the xdist workers.

The first worker that has collected tests needing it starts it, without waiting for it (under a
lock, in the session's shared folder); the others find it there; a test waits until it answers;
the controller stops it when the session ends. It is the server Prefect's test
harness starts (uvicorn on Prefect's app, a fresh SQLite database, no UI) without three services
whose records no test here reads: the event persister, automation triggers and the task-run
recorder (which turns every task run's events into rows). The service tests run their own server
with every service. Its database is restored from the schema Prefect's migrations leave in a new
one (tests/fixtures/prefect/sqlite-schema.sql, written by scripts/prefect_test_schema.py): migrating
a new database would cost more CPU than anything else the server does in a session. Prefect still
runs its migrations when it starts, from the revision the file records."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# light to import (this runs at collection): the server is started as the CLI starts its temporary one
from tasks.service.prefect_api import SERVER_ENV, free_port, server_command

SHARED_ENV = "TALENT_INDEX_TEST_SHARED"  # the session's shared folder (set by the controller)


def make_shared_folder() -> Path:
    """Made by the controller (or a run without workers) before any worker starts; the workers
    inherit the environment, so they find it there."""
    if SHARED_ENV not in os.environ:
        os.environ[SHARED_ENV] = tempfile.mkdtemp(prefix="talent-index-tests-shared-")
    return Path(os.environ[SHARED_ENV])


def _healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


SCHEMA = Path(__file__).resolve().parent / "fixtures" / "prefect" / "sqlite-schema.sql"


def restore_schema(database: Path) -> Path:
    """A new Prefect database at `database`, restored from the schema file."""
    import sqlite3

    con = sqlite3.connect(database)
    try:
        con.executescript(SCHEMA.read_text())
    finally:
        con.close()
    return database


def _launch(folder: Path) -> dict:
    port = free_port()
    if not (folder / "prefect.db").exists():
        restore_schema(folder / "prefect.db")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        {
            **SERVER_ENV,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'prefect.db'}",
            "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
        }
    )
    with open(folder / "server.log", "ab") as log:
        proc = subprocess.Popen(
            server_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    info = {"url": f"http://127.0.0.1:{port}/api", "pid": proc.pid}
    (folder / "prefect-server.json").write_text(json.dumps(info))
    return info


def _wait_until_healthy(folder: Path, info: dict, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _healthy(info["url"]):
        if not _running(info["pid"]) or time.monotonic() > deadline:
            if _running(info["pid"]):
                os.killpg(info["pid"], signal.SIGKILL)
            tail = (folder / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the test Prefect server did not come up at {info['url']}: {tail}")
        time.sleep(0.2)


def start_shared_server() -> None:
    """Start the session's server without waiting for it (a worker that collected tests needing it
    does so before its first test: the server's start, mostly importing Prefect, then overlaps the
    tests that need none)."""
    folder = make_shared_folder()
    with open(folder / "prefect-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "prefect-server.json").exists():
            _launch(folder)


def shared_server_url() -> str:
    """The session's Prefect API URL, once its server answers (started here if nobody started it)."""
    folder = make_shared_folder()
    state = folder / "prefect-server.json"
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
    with open(folder / "prefect-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = json.loads(state.read_text()) if state.exists() else None
        if info is None or not _running(info["pid"]):
            info = _launch(folder)
        _wait_until_healthy(folder, info, timeout)
        return info["url"]


def migrated_home(prefect_home: Path) -> Path:
    """A Prefect home whose database is already at Prefect's head revision (restored from the schema
    file): a temporary server started on it comes up without migrating a new one."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    restore_schema(prefect_home / "prefect.db")
    return prefect_home


def _running(pid: int) -> bool:
    """Alive and not a zombie (the worker that started it may be gone, leaving it unreaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_shared_server() -> None:
    """In the controller at the end of the session: kill the server (if a worker started one) and
    remove the shared folder. Killed, not asked to stop: its database is thrown away, and a graceful
    stop waits for the workers' open connections (their events clients), for seconds."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not os.environ.get(SHARED_ENV):
        return
    folder = Path(os.environ[SHARED_ENV])
    state = folder / "prefect-server.json"
    if state.exists():
        pid = json.loads(state.read_text())["pid"]
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    shutil.rmtree(folder, ignore_errors=True)
