"""Links a person can open from the Prefect UI: the releases and each run's Data Docs, served over
HTTP next to the service (`talent-index server up` starts this server on loopback).

Without a server (a refresh from the command line), links are file:// URIs of this machine.

    python -m tasks.files --home DATA_HOME --port 4201
"""

from __future__ import annotations

import argparse
import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .settings import data_home

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


class ReadOnlyHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of files under releases/ and runs/ only; directory listings are off."""

    def translate_path(self, path: str) -> str:
        parts = [p for p in unquote(urlsplit(path).path).split("/") if p and p not in (".", "..")]
        if not parts or parts[0] not in SERVED:
            return ""  # refused below
        return str(Path(self.directory, *parts))

    def send_head(self):
        target = self.translate_path(self.path)
        if not target or Path(target).is_dir():
            self.send_error(404, "only files of releases/ and runs/ are served")
            return None
        return super().send_head()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(home: Path, port: int, host: str = "127.0.0.1") -> None:
    handler = functools.partial(ReadOnlyHandler, directory=str(home))
    with ThreadingHTTPServer((host, port), handler) as httpd:
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
