"""The read-only files server behind the UI's links (no Prefect server needed)."""

from __future__ import annotations

import functools
import threading
from http.server import ThreadingHTTPServer

import pytest
import requests

from tasks.files import ReadOnlyHandler, file_url


@pytest.fixture
def files(tmp_path):
    (tmp_path / "releases" / "2020-x" / "report").mkdir(parents=True)
    (tmp_path / "releases" / "2020-x" / "report" / "index.html").write_text("<p>report</p>")
    (tmp_path / "snapshots" / "numbeo").mkdir(parents=True)
    (tmp_path / "snapshots" / "numbeo" / "ingests.jsonl").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("not served")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(ReadOnlyHandler, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_serves_release_files_and_nothing_else(files):
    _, base = files
    ok = requests.get(f"{base}/releases/2020-x/report/index.html", timeout=5)
    assert ok.status_code == 200 and ok.text == "<p>report</p>"
    for path in (
        "/snapshots/numbeo/ingests.jsonl",  # only releases/ and runs/
        "/secret.txt",
        "/releases/../secret.txt",
        "/releases/%2e%2e/secret.txt",
        "/releases/2020-x/",  # no directory listings
        "/",
    ):
        assert requests.get(base + path, timeout=5).status_code == 404, path
    assert requests.post(f"{base}/releases/2020-x/report/index.html", timeout=5).status_code == 501


def test_links_use_the_files_url_for_served_folders_only(files, monkeypatch):
    home, _ = files
    monkeypatch.setenv("TALENT_INDEX_HOME", str(home))
    report = home / "releases" / "2020-x" / "report" / "index.html"
    snapshot = home / "snapshots" / "numbeo" / "ingests.jsonl"
    monkeypatch.delenv("TALENT_INDEX_FILES_URL", raising=False)
    assert file_url(report) == report.resolve().as_uri()
    monkeypatch.setenv("TALENT_INDEX_FILES_URL", "https://index.example.org/files/")
    assert file_url(report) == "https://index.example.org/files/releases/2020-x/report/index.html"
    assert file_url(snapshot) == snapshot.resolve().as_uri()  # not served: stays a local path
    odd = home / "runs" / "a b" / "x (1).html"
    assert file_url(odd) == "https://index.example.org/files/runs/a%20b/x%20%281%29.html"
