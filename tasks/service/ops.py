"""Run the service on this machine: a Prefect server on loopback, the work pool, the deployments,
the automations and a worker (`talent-index server up`), and stop them in order (`server down`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.errors import PipelineError
from tasks.ingest.preflight import edition_of_run, preflight
from tasks.secrets import redact
from tasks.service.alerts import NOTIFY_ENV, apply_automations
from tasks.service.prefect_api import next_cron_dates
from tasks.settings import PROJECT_ROOT, data_home

POOL = "talent-index"


def state_dir() -> Path:
    return Path(os.environ.get("TALENT_INDEX_SERVICE_DIR", PROJECT_ROOT / ".prefect" / "service"))


def _prefect() -> str:
    return str(Path(sys.executable).with_name("prefect"))


DB_ENV = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL", "TALENT_INDEX_DATABASE_URL")


def _env(api_url: str, database_url: str | None = None, withhold: str | None = None) -> dict:
    """The environment of a service process. Only the server gets database credentials (`database_url`);
    the worker, its flow runs and the files server talk to the API and never see them: the known
    database variables are dropped, and so is any other variable holding the URL or its password
    (`withhold`)."""
    secrets = [withhold] if withhold else []
    if withhold and (pw := re.search(r"://[^:/@]+:([^@/]+)@", withhold)):
        secrets.append(pw.group(1))
    env = {k: v for k, v in os.environ.items() if k not in DB_ENV and not any(s and s in v for s in secrets)}
    env.update(
        {
            "PREFECT_API_URL": api_url,
            "PREFECT_UI_URL": api_url.removesuffix("/api"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "TALENT_INDEX_CHECKOUT": str(PROJECT_ROOT),
            "TALENT_INDEX_PYTHON": sys.executable,
        }
    )
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    return env


def redact_url(url: str) -> str:
    """postgresql+asyncpg://user:secret@host/db -> postgresql+asyncpg://user:***@host/db"""
    return re.sub(r"(?<=://)([^:/@]+):[^@/]*@", r"\1:***@", url)


def fingerprint(url: str | None) -> str:
    return hashlib.sha256((url or "sqlite").encode()).hexdigest()[:16]


def settings_path() -> Path:
    return state_dir() / "settings.json"


def load_settings() -> dict:
    try:
        return json.loads(settings_path().read_text())
    except (OSError, ValueError):
        return {}


def database_choice(
    database_url: str | None, database_url_file: Path | None, new_database: bool
) -> tuple[str | None, dict]:
    """The database URL to start the server on and its record for settings.json (never the password).

    Given: --database-url / TALENT_INDEX_DATABASE_URL, or --database-url-file (a file outside the
    repository, read at every start and remembered by path). Not given: the file remembered from the
    last start, else SQLite. Starting on another database than last time is refused unless
    `new_database` (a forgotten URL would otherwise bring up an empty service)."""
    last = load_settings().get("database") or {}
    source = "--database-url or TALENT_INDEX_DATABASE_URL"
    if database_url is None and database_url_file is None and last.get("file"):
        database_url_file = Path(last["file"])
    if database_url_file is not None:
        path = database_url_file.expanduser().resolve()
        if path.is_relative_to(PROJECT_ROOT):
            raise PipelineError(
                f"{path} is inside the repository: keep the database URL (it holds a password) "
                "in a file outside it, readable by you only"
            )
        try:
            database_url = path.read_text().strip()
        except OSError as exc:
            raise PipelineError(f"cannot read the database URL file {path}: {exc.strerror}") from None
        source = f"file {path}"
    record = {
        "kind": "postgresql" if database_url else "sqlite",
        "url": redact_url(database_url) if database_url else "sqlite (PREFECT_HOME)",
        "fingerprint": fingerprint(database_url),
        "source": source if database_url else "default",
    }
    if database_url_file is not None:
        record["file"] = str(database_url_file.expanduser().resolve())
    if last and last.get("fingerprint") != record["fingerprint"] and not new_database:
        raise PipelineError(
            f"the last `server up` used {last.get('url')} (from {last.get('source')}); this one would start on "
            f"{record['url']}: give the same database again, or pass --new-database to start on this one"
        )
    return database_url, record


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
        pass
    try:  # so does someone else's zombie (an init that reaps orphans only now and then)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
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
    port: int = 4200,
    database_url: str | None = None,
    notify: str | None = "webhook",
    progress=lambda m: None,
    database_url_file: Path | None = None,
    new_database: bool = False,
    files_port: int = 4201,
    files_url: str | None = None,
) -> dict:
    """Start the server, create the work pool, deploy, apply the automations, start a worker and
    the files server (releases and Data Docs over HTTP, so that the UI's links open)."""
    api_url = f"http://127.0.0.1:{port}/api"
    if (state_dir() / "server.pid").exists() and _alive(int((state_dir() / "server.pid").read_text())):
        raise PipelineError(
            f"a server started from this checkout is already running "
            f"(pid file {state_dir() / 'server.pid'}); run `talent-index server down` first"
        )
    if notify:  # before anything starts
        var = NOTIFY_ENV.get(notify)
        if var is None or not os.environ.get(var):
            raise PipelineError(
                f"alerts through {notify!r} need {var or 'a known notify kind'} (the URL alerts are "
                "posted to, a secret: never commit it); or pass --notify none"
            )
    database_url, db_record = database_choice(database_url, database_url_file, new_database)
    try:
        env = _env(api_url, withhold=database_url)

        files_url = (files_url or f"http://127.0.0.1:{files_port}").rstrip("/")
        env["TALENT_INDEX_FILES_URL"] = files_url
        progress(f"starting the Prefect server on 127.0.0.1:{port} ({db_record['url']})")
        _start(
            "server",
            [_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            _env(api_url, database_url),
        )
        wait_healthy(api_url)

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            progress(f"creating work pool {POOL!r} (process)")
            ensure_work_pool()
            # the worker and the files server come up while the deployments are made (a worker
            # polls its pool: it picks up the deployments' runs once they exist)
            progress("starting a worker")
            _start("worker", [_prefect(), "worker", "start", "--pool", POOL], env)
            progress(f"starting the files server on 127.0.0.1:{files_port} (releases and Data Docs at {files_url})")
            _start(
                "files",
                [sys.executable, "-m", "tasks.service.files", "--home", str(data_home()), "--port", str(files_port)],
                env,
            )
            progress("deploying prefect.yaml (annual-full-refresh, quarterly-numbeo-refresh)")
            _run([_prefect(), "--no-prompt", "deploy", "--all"], env, "prefect deploy")
            applied: dict[str, str] = {}
            if notify:
                progress(f"applying automations (notify: {notify})")

                applied = apply_automations(notify)
    except BaseException:
        down()  # nothing half-started stays behind (a missing webhook URL, a failed deploy)
        raise
    info = {
        "api_url": api_url,
        "ui_url": api_url.removesuffix("/api"),
        "files_url": files_url,
        "pool": POOL,
        "automations": applied,
        "database": db_record["kind"],
        "database_url": db_record["url"],
        "data_home": str(data_home()),
    }
    (state_dir() / "service.json").write_text(json.dumps(info, indent=1))
    settings_path().write_text(
        json.dumps(
            {"port": port, "files_port": files_port, "files_url": files_url, "notify": notify, "database": db_record},
            indent=1,
        )
    )
    return info


def ensure_work_pool() -> None:
    """The process work pool the deployments run on (created once; an existing one is kept)."""

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        except ObjectAlreadyExists:
            pass


def down() -> list[str]:
    """Stop the worker first, then the files server and the server; service.json goes (the
    remembered settings stay)."""
    lines = [_stop("worker"), _stop("files"), _stop("server")]
    (state_dir() / "service.json").unlink(missing_ok=True)
    return lines


def status() -> dict:
    """Server, worker, files server, pool, deployments with their schedules (timezone) and next runs,
    and the last run of each deployment. Raises PipelineError (one line) when the service is down."""
    try:
        info = json.loads((state_dir() / "service.json").read_text())
    except (OSError, ValueError):
        raise PipelineError(
            f"the service is not running (no {state_dir() / 'service.json'}): start it with `talent-index server up`"
        ) from None
    api_url = info["api_url"]
    try:
        healthy = requests.get(f"{api_url}/health", timeout=3).ok
    except requests.RequestException:
        healthy = False
    if not healthy:
        raise PipelineError(
            f"the Prefect server at {api_url} does not answer (see {state_dir() / 'server.log'}); "
            "`talent-index server down` then `server up`"
        )
    procs = {}
    for name in ("server", "worker", "files"):
        pidfile = state_dir() / f"{name}.pid"
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        procs[name] = {"pid": pid, "alive": bool(pid and _alive(pid))}

    deployments: list[dict[str, Any]] = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        pools = [p.name for p in client.read_work_pools()]
        for d in client.read_deployments():
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=20,
            )
            past = [r for r in runs if r.state and not r.state.is_scheduled()]
            upcoming = sorted(
                (r for r in runs if r.state and r.state.is_scheduled()),
                key=lambda r: str(r.expected_start_time or r.created or ""),
            )
            sched = [
                (getattr(s.schedule, "cron", None) or str(s.schedule), getattr(s.schedule, "timezone", None))
                for s in d.schedules
            ]
            when = upcoming[0].expected_start_time if upcoming else None
            if when is None and sched and sched[0][0]:
                when = next(iter(_cron_dates(sched, 1) or []), None)
            deployments.append(
                {
                    "name": d.name,
                    "next_at": when,
                    "timezone": sched[0][1] if sched else None,
                    "parameters": dict(d.parameters or {}),
                    "schedule": "; ".join(f"{c} ({tz or 'UTC'})" for c, tz in sched) or "none",
                    "next runs": ", ".join(
                        _local(r.expected_start_time, sched[0][1] if sched else None) for r in upcoming[:2]
                    )
                    or _next_from_cron(sched),
                    "last run": (
                        f"{past[0].name}: {past[0].state.name if past[0].state else '?'} "
                        f"({_local(past[0].start_time or past[0].expected_start_time, None)})"
                    )
                    if past
                    else "none",
                }
            )
    timed = [d for d in deployments if d["next_at"] is not None]
    nxt = min(timed, key=lambda d: d["next_at"]) if timed else None
    preflight = None
    if nxt:  # in the service's data home (the quarterly edition is the latest release's there)
        saved = os.environ.get("TALENT_INDEX_HOME")
        os.environ["TALENT_INDEX_HOME"] = info.get("data_home") or str(data_home_default())
        try:
            preflight = next_run_preflight(nxt["name"], nxt["parameters"], nxt["next_at"], nxt["timezone"])
        finally:
            if saved is None:
                os.environ.pop("TALENT_INDEX_HOME", None)
            else:
                os.environ["TALENT_INDEX_HOME"] = saved
    for dep in deployments:
        dep.pop("next_at"), dep.pop("timezone"), dep.pop("parameters")
    return {**info, "processes": procs, "pools": pools, "deployments": deployments, "preflight": preflight}


def _cron_dates(sched: list, n: int = 2) -> list | None:
    """The next `n` fire times of the first cron schedule; None when it cannot be read."""
    try:
        return next_cron_dates(sched[0][0], sched[0][1], n)
    except Exception:  # noqa: BLE001 - a schedule we cannot read: say so
        return None


def _next_from_cron(sched: list) -> str:
    """The next fire times of the first cron schedule (the server creates runs a few months ahead
    only, so an annual schedule often has none yet)."""
    if not sched or not sched[0][0]:
        return "none scheduled"
    dates = _cron_dates(sched)
    if dates is None:
        return "?"
    return ", ".join(_local(d, sched[0][1]) for d in dates) + " (not created yet)"


def data_home_default() -> Path:

    return data_home()


def next_run_preflight(name: str, parameters: dict, when, tz: str | None) -> dict:
    """The preflight (tasks.ingest.preflight) of a deployment's next run: the edition it would publish at
    `when`, each source's plan for it."""

    tzinfo = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    edition = edition_of_run(parameters, when.astimezone(tzinfo).year)
    try:
        plans = [
            p.as_dict()
            for p in preflight(
                edition,
                parameters.get("cadence", "annual"),
                parameters.get("mode", "online"),
                parameters.get("sources"),
            )
        ]
    except PipelineError as exc:
        plans = [
            {
                "source": "(all)",
                "vintage": "",
                "note": "",
                "reads": [],
                "more": 0,
                "missing": [str(exc)],
                "notes": [],
                "ready": False,
            }
        ]
    return {"deployment": name, "at": _local(when, tz), "edition": edition, "plans": plans}


def _local(when, tz: str | None) -> str:
    """A time in the schedule's timezone, the zone named ('2027-10-01 03:00 Asia/Shanghai')."""
    if when is None:
        return "?"

    zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M ") + (tz or "UTC")
