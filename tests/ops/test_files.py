"""The read-only files server behind the UI's links (no Prefect server needed)."""

from __future__ import annotations

import functools
import threading

import pytest
import requests

from tasks.service.files import FilesServer, ReadOnlyHandler, file_url


@pytest.fixture
def files(tmp_path):
    (tmp_path / "releases" / "2020-x" / "report").mkdir(parents=True)
    (tmp_path / "releases" / "2020-x" / "report" / "index.html").write_text("<p>report</p>")
    (tmp_path / "snapshots" / "numbeo").mkdir(parents=True)
    (tmp_path / "snapshots" / "numbeo" / "ingests.jsonl").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("not served")
    (tmp_path / "runs" / "r1" / "data-docs").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "data-docs" / "index.html").write_text("<p>docs</p>")
    (tmp_path / "runs" / "r1" / "other.txt").write_text("not served")
    httpd = FilesServer(("127.0.0.1", 0), functools.partial(ReadOnlyHandler, directory=str(tmp_path)))
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


def test_symlinks_out_of_releases_and_data_docs_are_refused(files, tmp_path):
    """A symlink inside a release (to /etc/passwd, to the snapshots' folder) is resolved first: what
    it points at is served only when it lies inside releases/ or a run's Data Docs too."""
    home, base = files
    release = home / "releases" / "2020-x"
    (release / "passwd").symlink_to("/etc/passwd")
    (release / "snaps").symlink_to(home / "snapshots")
    (release / "loop").symlink_to(release / "loop")
    (release / "again.html").symlink_to(release / "report" / "index.html")  # inside: served
    (home / "runs" / "r1" / "data-docs" / "up").symlink_to(home / "runs" / "r1" / "other.txt")
    for path in ("passwd", "snaps/numbeo/ingests.jsonl", "loop"):
        assert requests.get(f"{base}/releases/2020-x/{path}", timeout=5).status_code == 404, path
    assert requests.get(f"{base}/releases/2020-x/again.html", timeout=5).text == "<p>report</p>"
    assert requests.get(f"{base}/runs/r1/data-docs/index.html", timeout=5).text == "<p>docs</p>"
    for path in ("/runs/r1/other.txt", "/runs/r1/data-docs/up"):
        assert requests.get(base + path, timeout=5).status_code == 404, path


def test_two_hundred_concurrent_requests_are_all_answered(files):
    """200 clients at once: every connection is accepted at once (a listen backlog of 5 drops the
    surplus SYNs, and a client then waits for its kernel's retransmission, a second or more, which
    the connect timeout below does not allow) and every request is answered."""
    from concurrent.futures import ThreadPoolExecutor

    _, base = files
    barrier = threading.Barrier(200)

    def get(_):
        barrier.wait(timeout=30)
        return requests.get(f"{base}/releases/2020-x/report/index.html", timeout=(0.9, 30)).status_code

    with ThreadPoolExecutor(200) as pool:
        codes = list(pool.map(get, range(200)))
    assert codes == [200] * 200
