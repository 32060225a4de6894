"""A loopback internet: one HTTPS server on 127.0.0.1 that answers at the sources' real hosts and
paths. The fetcher's connections to those hosts are resolved to it (urllib3's create_connection,
for these hosts only, in tests only); TLS is real, with a test certificate authority (trustme) the
requests trust through REQUESTS_CA_BUNDLE. No configuration or URL is rewritten: the fetcher asks
for https://www.hurun.net/... and gets the canned answer of that host and path."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import trustme


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict = field(default_factory=dict)


# a responder sees the request's headers and gives the answer (e.g. a token check)
Responder = Callable[[dict], Answer]


@dataclass
class Seen:
    host: str
    path: str
    headers: dict
    status: int


class Internet:
    def __init__(self):
        self.routes: dict[tuple[str, str], Answer | Responder] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.ca = trustme.CA()
        self.port = 0
        self.api: list[str] = []  # what a fixture wants to remember of what it serves
        self.tiles: list[str] = []

    @property
    def hosts(self) -> set[str]:
        return {h for h, _ in self.routes}

    def add(self, url: str, answer: Answer | Responder) -> None:
        self.routes[self._key(url)] = answer

    @contextmanager
    def replaced(self, urls, answer: Answer | Responder):
        """Within it, these URLs give `answer`; their own answers come back after."""
        keys = [self._key(u) for u in urls]
        old = {k: self.routes[k] for k in keys}
        self.routes.update(dict.fromkeys(keys, answer))
        try:
            yield
        finally:
            self.routes.update(old)

    @staticmethod
    def _key(url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        return parts.hostname or "", parts.path + (f"?{parts.query}" if parts.query else "")

    def answer(self, host: str, path: str, headers: dict) -> Answer:
        route = self.routes.get((host, path))
        if route is None:
            return Answer(404, b"<html><title>404 Not Found</title></html>")
        return route(headers) if callable(route) else route

    def hits(self, url: str) -> list[Seen]:
        host, path = self._key(url)
        return [s for s in self.seen if s.host == host and s.path == path]

    # ------------------------------------------------------------------ serving
    def serve(self):
        """Start the server; returns a stop function."""
        internet = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                host = (self.headers.get("Host") or "").split(":")[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                a = internet.answer(host, self.path, headers)
                with internet.lock:
                    internet.seen.append(Seen(host, self.path, headers, a.status))
                self.send_response(a.status)
                self.send_header("Content-Type", a.content_type)
                self.send_header("Content-Length", str(len(a.body)))
                for k, v in a.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(a.body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a client that hangs up is expected
                pass

        httpd = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*sorted(self.hosts)).configure_cert(ctx)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        def stop():
            httpd.shutdown()
            httpd.server_close()

        return stop

    def resolve_here(self, monkeypatch, ca_file) -> None:
        """Connections to this internet's hosts go to the server; the requests trust its CA."""
        import urllib3.util.connection as conn

        real = conn.create_connection
        hosts, port = self.hosts, self.port

        def create_connection(address, *args, **kwargs):
            host, _ = address
            if host in hosts:
                return real(("127.0.0.1", port), *args, **kwargs)
            return real(address, *args, **kwargs)

        monkeypatch.setattr(conn, "create_connection", create_connection)
        self.ca.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
        for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(var, raising=False)
