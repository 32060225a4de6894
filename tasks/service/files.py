"""Links a person can open from the Prefect UI: the releases and each run's Data Docs, served over
HTTP next to the service (`talent-index server up` starts this server on loopback).

Without a server (a refresh from the command line), links are file:// URIs of this machine.

    python -m tasks.service.files --home DATA_HOME --port 4201
"""

from __future__ import annotations

import argparse
import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from tasks.settings import data_home

SERVED = ("releases", "runs")  # nothing else of the data home (raw responses, snapshots) is served
FILES_URL_ENV = "TALENT_INDEX_FILES_URL"


def file_url(path: Path) -> str:
    """An http(s) URL of a file under the data home when a files server is configured
    (TALENT_INDEX_FILES_URL, e.g. http://127.0.0.1:4201 or https://index.example.org/files),
    else its file:// URI."""
    base = os.environ.get(FILES_URL_ENV, "").rstrip("/")
    path = Path(path).resolve()
    if base:
        try:
            rel = path.relative_to(data_home())
        except ValueError:
            return path.as_uri()
        if rel.parts and rel.parts[0] in SERVED:
            return f"{base}/{quote(rel.as_posix())}"
    return path.as_uri()


def served_file(home: Path, url_path: str) -> Path | None:
    """The file a URL path names, when it lies, after every symlink is resolved, inside the data
    home's releases/ or a run's Data Docs (runs/<run>/data-docs/); else None. A symlink inside a
    release that points elsewhere (/etc/passwd, the snapshots) is refused like the path itself."""
    parts = [p for p in unquote(urlsplit(url_path).path).split("/") if p and p not in (".", "..")]
    if not parts or parts[0] not in SERVED:
        return None
    if parts[0] == "releases":
        root = home / "releases"
    elif len(parts) >= 3 and parts[2] == "data-docs":
        root = home / "runs" / parts[1] / "data-docs"
    else:
        return None
    try:
        target = Path(home, *parts).resolve(strict=True)
        allowed = root.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not target.is_relative_to(allowed) or not target.is_file():
        return None
    return target


class ReadOnlyHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of files under releases/ and the runs' Data Docs only (after resolving
    symlinks); directory listings are off."""

    def translate_path(self, path: str) -> str:
        target = served_file(Path(self.directory), path)
        return str(target) if target else ""  # refused below

    def send_head(self):
        target = self.translate_path(self.path)
        if not target:
            self.send_error(404, "only files of releases/ and the runs' Data Docs are served")
            return None
        return super().send_head()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class FilesServer(ThreadingHTTPServer):
    """A thread per client; a listen backlog for a page's worth of parallel requests (socketserver's
    default of 5 drops connections when a browser or a crawler asks for many files at once)."""

    request_queue_size = 512
    daemon_threads = True


def serve(home: Path, port: int, host: str = "127.0.0.1") -> None:
    handler = functools.partial(ReadOnlyHandler, directory=str(home.resolve()))
    with FilesServer((host, port), handler) as httpd:
        httpd.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="the data home (default: TALENT_INDEX_HOME)")
    parser.add_argument("--port", type=int, default=4201)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    serve((args.home or data_home()).resolve(), args.port, args.host)


if __name__ == "__main__":
    main()
