"""A scripted HTTP server on 127.0.0.1 for fault tests (no outside network)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Script:
    """path -> list of responses served in turn (the last one repeats)."""

    def __init__(self):
        self.routes: dict[str, list[dict]] = {}
        self.hits: dict[str, int] = {}
        self.headers_seen: dict[str, list[dict]] = {}
        self.base = ""  # set once the server listens
        self.port = 0

    def add(self, path, *responses):
        self.routes[path] = list(responses)


def make_handler(script: Script):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):  # noqa: N802
            path = self.path
            n = script.hits.get(path, 0)
            script.hits[path] = n + 1
            script.headers_seen.setdefault(path, []).append(dict(self.headers))
            responses = script.routes.get(path) or [{"status": 404, "body": b"not found"}]
            r = responses[min(n, len(responses) - 1)]
            if r.get("reset"):  # drop the connection without answering
                import socket

                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return
            if r.get("sleep"):
                time.sleep(r["sleep"])
            body = r.get("body", b"")
            if callable(body):
                body = body(self)
            inm = self.headers.get("If-None-Match")
            if r.get("etag") and inm == r["etag"]:
                self.send_response(304)
                self.send_header("ETag", r["etag"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(r.get("status", 200))
            self.send_header("Content-Type", r.get("content_type", "text/html; charset=utf-8"))
            for k, v in r.get("headers", {}).items():
                self.send_header(k, v)
            if r.get("etag"):
                self.send_header("ETag", r["etag"])
            length = r.get("content_length", len(body))
            if length is None:  # no Content-Length: the body ends when the connection closes
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            if r.get("drip"):
                for i in range(0, len(body), r["drip"]):
                    self.wfile.write(body[i : i + r["drip"]])
                    self.wfile.flush()
                    time.sleep(r.get("drip_sleep", 0.05))
            else:
                self.wfile.write(body)
            if r.get("close"):
                self.close_connection = True

    return Handler


class QuietServer(ThreadingHTTPServer):
    """A client that gives up mid-answer (a size cap, a timeout: what the tests provoke) is expected:
    no traceback for it in the test output."""

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@pytest.fixture()
def server():
    script = Script()
    httpd = QuietServer(("127.0.0.1", 0), make_handler(script))
    # a short poll interval: shutdown() waits for the next poll (0.5 s by default, on every test)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    script.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    script.port = httpd.server_address[1]
    yield script
    httpd.shutdown()
    httpd.server_close()
