"""The deploy-run-alert cycle on a real Prefect server on loopback (PostgreSQL when
TALENT_INDEX_TEST_DATABASE_URL is set, as .ci/run does; SQLite otherwise)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent.parent
CLI = str(Path(sys.executable).with_name("talent-index"))
PREFECT = str(Path(sys.executable).with_name("prefect"))

pytestmark = pytest.mark.slow


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """A local webhook receiver: keeps every JSON body posted to it."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.arrived: list[float] = []  # time.time() of each body's arrival
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                outer.bodies.append(json.loads(self.rfile.read(n) or b"{}"))
                outer.arrived.append(time.time())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 60.0, quiet: float = 1.5) -> list:
        """The bodies once `n` have arrived (polled, up to `timeout`), after a quiet period in which
        no further one arrived (an alert reaches us within a fraction of a second of its event)."""
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.bodies) < n:
            time.sleep(0.05)
        seen, until = len(self.bodies), time.time() + quiet
        while time.time() < until:
            if len(self.bodies) != seen:  # an extra alert: no need to wait any longer
                break
            time.sleep(0.05)
        return list(self.bodies)


@pytest.fixture(scope="module")
def service(tmp_path_factory, baseline):
    """`talent-index server up` on loopback, its data home a copy of the baseline (every source of
    2020 ingested, one release), so that each deployment run below ingests only the source it
    breaks. The worker and the CLI poll every second (10 s and 5 s by default)."""
    tmp = tmp_path_factory.mktemp("service")
    shutil.copytree(baseline, tmp / "data")
    receiver = Receiver()
    port = free_port()
    env = {
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        **os.environ,
        "TALENT_INDEX_SERVICE_DIR": str(tmp / "svc"),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "TALENT_INDEX_HOME": str(tmp / "data"),
        "TALENT_INDEX_WEBHOOK_URL": receiver.url,
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    args = [CLI, "server", "up", "--port", str(port), "--files-port", str(free_port())]
    db = os.environ.get("TALENT_INDEX_TEST_DATABASE_URL")
    if db:
        args += ["--database-url", db]
    up = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert f"Prefect UI: http://127.0.0.1:{port}" in up.stdout
        info = json.loads((tmp / "svc" / "service.json").read_text())
        env["PREFECT_UI_URL"] = info["ui_url"]
        yield {
            "env": env,
            "receiver": receiver,
            "tmp": tmp,
            "db": "postgresql" if db else "sqlite",
            "files_url": info["files_url"],
        }
    finally:
        down = subprocess.run([CLI, "server", "down"], env=env, capture_output=True, text=True, timeout=120)
        print(down.stdout)
        for name in ("worker", "files", "server"):
            assert not (tmp / "svc" / f"{name}.pid").exists()
        assert not (tmp / "svc" / "service.json").exists()  # down cleans up; settings.json stays
        assert (tmp / "svc" / "settings.json").exists()
        receiver.httpd.shutdown()


def run_deployment(service, recordings: Path, sources: list[str]) -> str:
    """A run of the annual deployment on the service (as `prefect deployment run --watch` would,
    in-process), polling its state every half second; returns its final state's name."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment as run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: service["env"]["PREFECT_API_URL"]}):
        flow_run: FlowRun = run(  # type: ignore[assignment]  # sync_compatible: a FlowRun when called sync
            "refresh/annual-full-refresh",
            parameters={"mode": "offline", "recordings": str(recordings), "sources": sources},
            timeout=600,
            poll_interval=0.5,
            as_subflow=False,
        )
    assert flow_run.state is not None and flow_run.state.is_final(), flow_run.state
    service["last_message"] = flow_run.state.message
    service["last_run"] = flow_run
    return str(flow_run.state.name)


def artifacts_of(service, flow_run) -> dict:
    """key -> artifact of one flow run (its own, not its subflows')."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: service["env"]["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    return {a.key: a for a in found}


def recordings_copy(service, name: str) -> Path:
    rec = service["tmp"] / name
    shutil.copytree(ROOT / "data" / "recordings", rec)
    return rec


def test_warning_publishes_and_alerts_once(service):
    rec = recordings_copy(service, "warning-rec")
    page = rec / "2020" / "hurun" / "api-WE53FEER-0.json"
    text = page.read_text()
    # a company without headquarters (neither field)
    page.write_text(
        text.replace(
            '"Beijing", "hs_Rank_Unicorn_ComHeadquarters_Cn": "中国-北京"',
            '"", "hs_Rank_Unicorn_ComHeadquarters_Cn": ""',
            1,
        )
    )
    # a run that published with warnings is visibly different from a clean one
    assert run_deployment(service, rec, ["hurun"]) == "Completed with warnings", service["last_message"]
    data = Path(service["env"]["TALENT_INDEX_HOME"])
    latest = (data / "releases" / "LATEST").read_text().strip()
    assert (data / "releases" / latest / "manifest.json").exists()
    assert "1 data-quality warnings in hurun; published " + latest in service["last_message"]
    alerts = service["receiver"].wait_for(1)
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["alert"] == "data-quality-warning" and a["source"] == "hurun" and a["release"] == latest
    assert a["deployment"] == "annual-full-refresh" and a["flow_run"] == service["last_run"].name
    assert a["url"] == f"{service['env']['PREFECT_UI_URL']}/runs/flow-run/{service['last_run'].id}"
    assert [(w["expectation"], w["column"], w["offending"]) for w in a["warnings"]] == [
        ("expect_column_values_to_not_be_null", "city", ["Sample Unicorn Beijing 37"])  # the list's first Beijing row
    ]
    assert a["data_home"] == service["env"]["TALENT_INDEX_HOME"]
    page = a["warnings"][0]["data_docs"]
    assert page.startswith(service["files_url"] + "/runs/") and "/validations/hurun_companies/" in page
    assert requests.get(page, timeout=10).status_code == 200  # the page opens
    # what a person opens first is on the parent run: the ranking, one data-quality table, the report
    arts = artifacts_of(service, service["last_run"])
    assert {"ranking", "data-quality", "release-report"} <= set(arts)
    assert f"Edition 2020, release {latest} (SAMPLE" in arts["ranking"].description
    assert "1 data-quality warnings" in arts["ranking"].description
    assert len(json.loads(arts["ranking"].data)) == 30
    quality = json.loads(arts["data-quality"].data)
    warned = [r for r in quality if r["severity"] == "warning"]
    assert [(r["source"], r["suite"], r["check"]) for r in warned] == [
        ("hurun", "hurun_companies", "expect_column_values_to_not_be_null(city)")
    ]
    files_url = service["files_url"]
    assert warned[0]["data docs"].startswith(files_url + "/runs/") and warned[0]["data docs"].endswith(".html")
    link = f"{files_url}/releases/{latest}/report/index.html"
    assert arts["release-report"].data == f"[Report of release {latest}]({link})"  # a link artifact's markdown
    assert requests.get(link, timeout=10).status_code == 200  # the link opens, served next to the service
    assert requests.get(warned[0]["data docs"], timeout=10).status_code == 200
    assert requests.get(f"{files_url}/snapshots/", timeout=10).status_code == 404  # only releases and runs
    print("warning alert as received:", json.dumps(a))


def test_error_blocks_the_release_and_alerts_once(service):
    data = Path(service["env"]["TALENT_INDEX_HOME"])
    latest_before = (data / "releases" / "LATEST").read_text()
    releases_before = sorted(p.name for p in (data / "releases").iterdir())
    service["receiver"].bodies.clear()
    service["receiver"].arrived.clear()
    rec = recordings_copy(service, "error-rec")
    page = rec / "2020" / "numbeo" / "quality-of-life-rankings-2020.html"
    page.write_text(page.read_text().replace(">86.96<", ">-86.96<", 1))
    assert run_deployment(service, rec, ["numbeo"]) == "Failed"
    failed_at = service["last_run"].state.timestamp.timestamp()
    assert (data / "releases" / "LATEST").read_text() == latest_before
    assert sorted(p.name for p in (data / "releases").iterdir()) == releases_before
    alerts = service["receiver"].wait_for(1)
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["alert"] == "run-failed" and a["state"] == "Failed" and a["deployment"] == "annual-full-refresh"
    assert "expect_column_values_to_be_between(pollution_index)" in a["message"] and "beijing" in a["message"]
    assert "source numbeo" in a["message"]
    assert a["url"] == f"{service['env']['PREFECT_UI_URL']}/runs/flow-run/{service['last_run'].id}"
    # what broke, with its value and the allowed range, where to look and the run's data home
    assert (a["source"], a["suite"], a["check"]) == (
        "numbeo",
        "numbeo",
        "expect_column_values_to_be_between(pollution_index)",
    )
    assert a["offending"] == "beijing (-86.96)" and a["allowed"] == "between 0 and 120"
    assert a["data_docs"].startswith(service["files_url"] + "/runs/") and "/validations/numbeo/" in a["data_docs"]
    assert a["data_home"] == str(data)
    quality = json.loads(artifacts_of(service, service["last_run"])["data-quality"].data)
    assert ("numbeo", "error", "beijing (-86.96)") in {
        (r["source"], r["severity"], r["offending (value)"]) for r in quality
    }
    print(
        f"failure alert as received ({service['db']}, {service['receiver'].arrived[0] - failed_at:.2f} s after "
        f"the run failed):",
        json.dumps(a),
    )


def test_status_shows_the_service_and_its_schedules_with_their_timezone(service):
    from tests.flows.conftest import cli

    # in this process: the command reads the service's state folder and asks the API service.json names
    res = cli("server", "status", env={"TALENT_INDEX_SERVICE_DIR": service["env"]["TALENT_INDEX_SERVICE_DIR"]})
    assert res.exit_code == 0, res.output
    for needle in (
        "server",
        "worker",
        "files",
        "talent-index",
        "annual-full-refresh",
        "quarterly-numbeo-refresh",
        "0 3 1 10 * (Asia/Shanghai)",
        "Asia/Shanghai",
        "next scheduled run: ",  # its preflight: what each source of that run would read
        "https://www.numbeo.com/quality-of-life/rankings",
    ):
        assert needle in res.stdout, (needle, res.stdout)
    # a run is one interpreter, the checkout's environment's engine (no workspace supervisor first)
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: service["env"]["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        commands = {
            name: (client.read_deployment_by_name(f"refresh/{name}").job_variables or {}).get("command")
            for name in ("annual-full-refresh", "quarterly-numbeo-refresh")
        }
    assert set(commands.values()) == {f"{sys.executable} -m prefect.engine"}, commands
    # the worker (and so every flow run) never holds database credentials
    worker = int((service["tmp"] / "svc" / "worker.pid").read_text())
    environ = Path(f"/proc/{worker}/environ").read_bytes().decode(errors="replace")
    assert "PREFECT_API_DATABASE_CONNECTION_URL" not in environ
    if service["db"] == "postgresql":
        password = os.environ["TALENT_INDEX_TEST_DATABASE_URL"].split(":")[2].split("@")[0]
        assert password not in environ
        settings = (service["tmp"] / "svc" / "settings.json").read_text()
        assert password not in settings and ":***@" in settings


def test_status_when_down_is_one_line_and_non_zero(tmp_path):
    env = {**os.environ, "TALENT_INDEX_SERVICE_DIR": str(tmp_path / "svc")}
    res = subprocess.run([CLI, "server", "status"], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "the service is not running" in res.stderr and "talent-index server up" in res.stderr
