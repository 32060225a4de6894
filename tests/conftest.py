"""Test setup: no network, telemetry off, Prefect's home and all run-time data in temp folders."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.prefect_server import make_shared_folder, shared_server_url, start_shared_server, stop_shared_server


def _exit_at_once() -> None:
    """An xdist worker's last exit handler: once every other one has run, the process ends without
    the interpreter's finalization, which frees every module and object of the session one by one
    (seconds, for the last worker, while the whole session waits for it)."""
    import logging
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_exit_at_once)  # registered before the others: run after them


ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="talent-index-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
os.environ["TALENT_INDEX_HOME"] = str(_TMP / "home")
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect" / "tests"))
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.pop("NUMBEO_API_KEY", None)


def _one_certificate_bundle() -> str:
    """Prefect builds a TLS context from certifi's whole bundle (~150 certificates, tens of ms) for
    every API client it makes, one per task run, although the tests' API is plain HTTP on loopback
    and no certificate is ever checked. Its clients here (and in the processes the tests start) load
    a bundle of one certificate instead: the first of certifi's."""
    import re

    import certifi

    pem = Path(certifi.where()).read_text()
    first = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", pem, re.S)
    assert first, f"no certificate in {certifi.where()}"
    bundle = _TMP / "one-certificate.pem"
    bundle.write_text(first.group(0))
    return str(bundle)


os.environ.setdefault("PREFECT_API_SSL_CERT_FILE", _one_certificate_bundle())


class NetworkBlocked(RuntimeError):
    pass


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", "") or str(host).startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self, address):
    if not _is_local(address):
        raise NetworkBlocked(f"tests must not reach the network: connection to {address!r} blocked")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_local(address):
        raise NetworkBlocked(f"tests must not reach the network: connection to {address!r} blocked")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost", "127.0.0.1", "::1", "") and not str(host).startswith("127."):
        raise NetworkBlocked(f"tests must not resolve outside hosts: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _guarded_getaddrinfo


def pytest_configure(config):
    make_shared_folder()


def pytest_collection_finish(session):
    if not session.config.option.collectonly and any("prefect_harness" in i.fixturenames for i in session.items):
        start_shared_server()


def pytest_unconfigure(config):
    stop_shared_server()


@pytest.fixture(scope="session")
def prefect_harness():
    """The session's Prefect server (one for all workers, launched after collection: tests/prefect_server.py)
    as this process's API, once it answers; its URL. Flow runs send no heartbeats, as under the CLI's temporary
    server (each run would wait up to a second at its end for its heartbeat thread)."""
    from prefect import settings

    url = shared_server_url()
    with settings.temporary_settings(
        updates={settings.PREFECT_API_URL: url, settings.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield url


@pytest.fixture()
def data_home(tmp_path, monkeypatch):
    """A fresh, empty run-time data folder for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("TALENT_INDEX_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def recordings():
    return ROOT / "data" / "recordings"


@pytest.fixture(scope="session")
def registry():
    from tasks.registry.cities import load_registry

    return load_registry()


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder built once per test session, whatever the number of xdist workers: the first worker
    to ask builds it under a lock in the session's shared temporary root; the others wait and reuse."""
    import fcntl

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the root all workers' temporary folders live in
    target, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.write_text("ok")
    return target


@pytest.fixture(scope="session")
def baseline(tmp_path_factory):
    """A data home with every source of edition 2020 ingested once from the bundled recordings and
    one release published (without Prefect), built once per session. Tests copy it; nothing writes
    to it."""
    return built_once(tmp_path_factory, "baseline-home", _build_baseline)


def ingest_and_publish(registry, m, cfg, analyses: bool = False, today: str | None = None) -> dict:
    """Every source of edition 2020 ingested offline into TALENT_INDEX_HOME, then a release
    published (without Prefect); its manifest."""
    from flows.publish import gather_score_publish
    from tasks.ingest.core import ingest

    for s in cfg:
        ingest(s, cfg[s], "offline", registry)
    return gather_score_publish(registry, m, edition="2020", analyses=analyses, draws=160, today=today)


def _build_baseline(home: Path) -> None:
    from scoring import load_methodology
    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALENT_INDEX_HOME", str(home))
        registry, cfg, m = load_registry(), load_sources_config(edition="2020"), load_methodology()
        ingest_and_publish(registry, m, cfg, analyses=True, today="2026-11-26")


@pytest.fixture
def chromium_path() -> str:
    """Chromium for the browser checks: CI must have it (.ci/run installs Debian's), elsewhere the
    test is skipped without it."""
    from tasks.service.browser import chromium

    browser = chromium()
    if not browser:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium for this test")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return browser
