"""A polite, fault-tolerant fetcher shared by every source, with offline replay and recording.

Modes:
  online  - fetch from the source (robots.txt, per-host rate limit, retries, conditional requests)
  offline - replay the bundled recordings by URL (no network; a URL without a recording is an error)
  record  - fetch online and save the responses as new recordings
Every response is stored as a content-addressed raw snapshot with its metadata.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from tasks.errors import FetchError, NotPublished, ReplayMissingError
from tasks.settings import local_path, read_capped, recordings_dir, sources_path
from tasks.store.editions import default_edition, recorded_editions
from tasks.store.storage import (
    RawRecord,
    atomic_write_bytes,
    atomic_write_json,
    find_raw,
    sha256_bytes,
    store_raw,
    utc_now,
)

MODES = ("online", "offline", "record")
_SECRET = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def expand_secrets(url: str, source: str, where: str | None = None) -> str:
    """Fill `${ENV_VAR}` placeholders from the environment at request time only.

    URLs keep their placeholders everywhere they are stored (raw metadata, recordings, errors), so
    an API key never leaves the process environment.
    """

    def sub(m):
        value = os.environ.get(m.group(1))
        if not value:
            raise FetchError(
                source,
                where or url,
                f"environment variable {m.group(1)} is not set (it holds a secret "
                "this request needs; set it or use a Prefect Secret block)",
            )
        return value

    return _SECRET.sub(sub, url)


def pause(seconds: float) -> None:
    """How the fetcher waits (rate limit, backoff): looked up at each Fetcher's creation, so that a
    test of the online path can make waiting instant without changing any setting."""
    time.sleep(seconds)


RETRY_STATUSES = {429, 500, 502, 503, 504}
KEPT_HEADERS = ("content-type", "etag", "last-modified", "date", "content-length", "retry-after")
DEFAULT_UA = "city-talent-index/0.1 (+https://example.org/city-talent-index; data-team@example.org)"


@dataclass
class HttpPolicy:
    """How politely one source is fetched (`http:` of a source in data/sources.yaml)."""

    __pydantic_config__ = {"extra": "forbid"}  # read as typed configuration: an unknown key is an error

    user_agent: str = DEFAULT_UA
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_bytes: int = 20 * 1024 * 1024  # an HTTP response
    max_file_bytes: int = 2 * 1024**3  # a local `file:` table: not a download, its own (much larger) cap
    allowed_domains: tuple[str, ...] = ()
    min_interval_s: float = 2.0  # per host; raised to robots.txt Crawl-delay
    retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 300.0
    obey_robots: bool = True
    content_types: tuple[str, ...] = ()  # accepted prefixes, e.g. ("text/html",); empty = any
    total_timeout_s: float = 120.0  # a slow drip of bytes may not take longer than this
    headers: dict = field(default_factory=dict)  # extra request headers; "${VAR}" filled from the environment
    reuse_within_s: float = 6 * 3600  # a response stored this recently is reused without a request
    auth_hint: str = ""  # what an HTTP 401 or 403 means for this source (e.g. which token to renew)

    @classmethod
    def from_config(cls, cfg: dict | None) -> HttpPolicy:
        cfg = dict(cfg or {})
        for key in ("allowed_domains", "content_types"):
            if key in cfg:
                cfg[key] = tuple(cfg[key])
        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown http settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**cfg)


class _HostThrottle:
    """Per-host minimum interval between requests (a token bucket of size one)."""

    def __init__(self):
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str, interval: float, sleep, clock) -> None:
        with self._lock:
            now = clock()
            at = max(now, self._next.get(host, 0.0))
            self._next[host] = at + interval
        if at > now:
            sleep(at - now)


def _domain_ok(url: str, allowed: tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return not allowed or any(host == d or host.endswith("." + d) for d in allowed)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Recordings:
    """The recordings of one edition: `<root>/<edition>/index.json` maps a URL to a file (relative
    to that folder) and its recorded metadata."""

    def __init__(self, root: Path | None = None, edition: str | None = None):

        self.base = Path(root) if root else recordings_dir()
        self.edition = str(edition or (recorded_editions(self.base) or [default_edition()])[-1])
        self.root = self.base / self.edition
        self.in_recordings_root = self.base.resolve() == recordings_dir()
        self.index_path = self.root / "index.json"
        self._index = self._load()

    def _load(self) -> dict:
        if not self.index_path.exists():
            return {}
        try:
            doc = json.loads(self.index_path.read_text())
        except ValueError as exc:
            raise FetchError(
                "recordings",
                str(self.index_path),
                f"the recordings index is not valid JSON ({exc}); rebuild it with `make recordings` or record again",
            ) from None
        if not isinstance(doc, dict):
            raise FetchError("recordings", str(self.index_path), "expected a JSON object mapping URLs to recordings")
        return doc

    def get(self, url: str) -> tuple[bytes, dict] | None:
        entry = self._index.get(url)
        if entry is None:
            return None
        # os.path and an unbuffered read: pathlib's objects and buffer cost more than the read itself
        # at a recording per city
        path = os.path.join(self.root, entry["file"])
        try:
            with open(path, "rb", buffering=0) as fh:
                body = fh.readall()
        except OSError as exc:
            raise FetchError(
                entry.get("source", "recordings"),
                url,
                f"the recording {path} listed in {self.index_path} cannot be read: {exc.strerror}",
            ) from None
        # stored relative to the recordings root (TALENT_INDEX_RECORDINGS), so a moved checkout still
        # finds it; recordings elsewhere keep their absolute path
        if self.in_recordings_root:
            return body, {**entry, "path": f"{self.edition}/{entry['file']}", "root": "recordings"}
        return body, {**entry, "path": os.path.realpath(path), "root": ""}

    def urls(self, source: str | None = None) -> list[str]:
        return [u for u, e in self._index.items() if source is None or e.get("source") == source]

    def add(self, source: str, url: str, body: bytes, status: int, headers: dict, filename: str) -> None:
        path = self.root / source / filename
        atomic_write_bytes(path, body)
        self._index[url] = {
            "source": source,
            "file": path.relative_to(self.root).as_posix(),
            "status": status,
            "headers": headers,
            "recorded_at": utc_now(),
        }
        atomic_write_json(self.index_path, self._index)


@dataclass
class Fetcher:
    source: str
    mode: str = "offline"
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    parser_version: str = "1"
    edition: str | None = None  # offline: the edition whose recordings are replayed
    recordings: Recordings | None = None
    session: requests.Session | None = None
    sleep: Callable[[float], None] = field(default_factory=lambda: pause)
    clock: Callable[[], float] = time.monotonic
    reuse_raw: bool = True
    requests_made: int = 0
    throttle: _HostThrottle = field(default_factory=_HostThrottle)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")
        if self.mode == "offline" and self.recordings is None:
            self.recordings = Recordings(edition=self.edition)
        if self.mode != "offline" and self.session is None:
            self.session = requests.Session()
            self.session.headers["User-Agent"] = self.policy.user_agent
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}

    # ------------------------------------------------------------------ public
    def get(self, url: str, *, recording_name: str | None = None, headers: dict | None = None) -> RawRecord:
        """Fetch (or replay) one URL and store the body as a raw snapshot. `headers`: sent with this
        request only, beside the source's own (e.g. the Referer an API expects)."""
        if url.startswith("file:"):
            return self._read_local(url)
        if self.mode == "offline":
            return self._replay(url)
        if not url.startswith(("http://", "https://")):
            raise FetchError(
                self.source,
                url,
                f"cannot fetch this URL in {self.mode} mode: only the bundled recordings provide it (use --offline)",
            )
        body, rec = self._fetch_online(url, headers or {})
        if self.mode == "record" and not rec.reused:
            (self.recordings or Recordings(edition=self.edition)).add(
                self.source, url, body, rec.status, rec.headers, recording_name or rec.sha256[:16]
            )
        return rec.holding(body)

    # ------------------------------------------------------------------ local files and offline
    def _read_local(self, url: str) -> RawRecord:
        """`file:relative/path` (from the checkout) or `file:///abs/path`: curated tables kept in git."""
        path = local_path(url)
        try:
            body = read_capped(path, self.policy.max_file_bytes)
        except OSError as exc:
            raise FetchError(self.source, url, f"cannot read {path}: {exc.strerror}") from exc
        except ValueError:
            raise FetchError(
                self.source,
                url,
                f"{path} is larger than the {self.policy.max_file_bytes:,} bytes read of a local file: raise "
                f"http.max_file_bytes under {self.source} in {sources_path()}",
            ) from None
        rec = RawRecord(
            source=self.source,
            url=url,
            final_url=str(path),
            status=200,
            headers={},
            fetched_at=utc_now(),
            sha256="",
            size=len(body),
            user_agent="(local file)",
            parser_version=self.parser_version,
            mode=self.mode,
        )
        return store_raw(rec, body).holding(body)

    def _replay(self, url: str) -> RawRecord:
        recordings = self.recordings or Recordings(edition=self.edition)
        found = recordings.get(url)
        if found is None:
            known = len(recordings.urls(self.source))
            raise ReplayMissingError(
                self.source,
                url,
                f"offline mode: no recording for this URL in edition {recordings.edition} ({known} recorded "
                f"for {self.source} in {recordings.index_path}); record it with `talent-index refresh --record`",
            )
        body, entry = found
        if int(entry.get("status", 200)) in (404, 410):
            raise NotPublished(self.source, url, f"HTTP {entry['status']} (as recorded in {recordings.index_path})")
        # the recording is the raw response: read in place, not copied into the raw store (20,000
        # file creations at 10,000 cities); its path and sha256 go into the snapshot's provenance
        return RawRecord(
            source=self.source,
            url=url,
            final_url=url,
            status=int(entry.get("status", 200)),
            headers=entry.get("headers", {}),
            fetched_at=utc_now(),
            sha256=sha256_bytes(body),
            size=len(body),
            user_agent="(replay)",
            parser_version=self.parser_version,
            mode="offline",
            path=entry["path"],
            root=entry["root"],
        ).holding(body)

    # ------------------------------------------------------------------ online
    def _session(self) -> requests.Session:
        if self.session is None:  # set up in __post_init__ for every mode that goes online
            self.session = requests.Session()
            self.session.headers["User-Agent"] = self.policy.user_agent
        return self.session

    def _robots_allows(self, url: str) -> bool:
        """RFC 9309: a robots.txt answering 4xx allows everything; 5xx or unreachable disallows
        everything (a clear FetchError naming why); otherwise its rules for our user agent."""
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        if base not in self._robots:
            robots = base + "/robots.txt"
            rp: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
            attempt = 0
            while True:
                attempt += 1
                try:
                    resp = self._session().get(robots, timeout=(self.policy.connect_timeout, self.policy.read_timeout))
                    self.requests_made += 1
                    break
                except requests.RequestException as exc:
                    if attempt > self._retry_limit(exc):
                        raise FetchError(
                            self.source,
                            url,
                            f"robots.txt of {base} unreachable, gave up after "
                            f"{attempt} attempts: {describe_failure(exc)}; RFC 9309 "
                            "treats that as disallowing every URL of the host",
                        ) from None
                    self.sleep(self._backoff(attempt, None))
            if resp.status_code >= 500:
                raise FetchError(
                    self.source,
                    url,
                    f"robots.txt answered HTTP {resp.status_code}: RFC 9309 treats "
                    "that as disallowing every URL of the host; try again later",
                )
            if resp.status_code >= 400:
                rp = None  # no robots.txt: everything allowed
            elif rp is not None:
                rp.parse(resp.text.splitlines())
            self._robots[base] = rp
            if rp is not None:
                delay = rp.crawl_delay(self.policy.user_agent)
                if delay:
                    self.policy.min_interval_s = max(self.policy.min_interval_s, float(delay))
        rp = self._robots[base]
        return rp is None or rp.can_fetch(self.policy.user_agent, url)

    def _fetch_online(self, url: str, extra_headers: dict) -> tuple[bytes, RawRecord]:
        p = self.policy
        if not _domain_ok(url, p.allowed_domains):
            raise FetchError(self.source, url, f"host is not one of this source's domains {list(p.allowed_domains)}")
        previous = find_raw(self.source, url) if self.reuse_raw else None
        if previous and _age_s(previous.fetched_at) < p.reuse_within_s:
            previous.reused = True  # e.g. a rerun after a failure: do not fetch again
            return previous.read(), previous
        if p.obey_robots and not self._robots_allows(url):
            raise FetchError(self.source, url, "robots.txt disallows this URL for our user agent")
        headers = {k: expand_secrets(v, self.source, where=url) for k, v in {**p.headers, **extra_headers}.items()}
        if previous:
            if previous.headers.get("etag"):
                headers["If-None-Match"] = previous.headers["etag"]
            if previous.headers.get("last-modified"):
                headers["If-Modified-Since"] = previous.headers["last-modified"]
        attempt = 0
        while True:
            attempt += 1
            self.throttle.wait(urlsplit(url).hostname or "", p.min_interval_s, self.sleep, self.clock)
            try:
                resp, body, final_url = self._request(url, headers)
            except (requests.Timeout, requests.ConnectionError, _TruncatedBody) as exc:
                if attempt > self._retry_limit(exc):
                    detail = describe_failure(exc)
                    if "${" in url:
                        detail = detail.replace(expand_secrets(url, self.source), url)
                    raise FetchError(self.source, url, f"gave up after {attempt} attempts: {detail}") from None
                self.sleep(self._backoff(attempt, None))
                continue
            if resp.status_code == 304 and previous:
                previous.reused = True
                return previous.read(), previous
            if resp.status_code in RETRY_STATUSES:
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                if wait is not None and wait > p.max_retry_after_s:
                    raise FetchError(
                        self.source,
                        url,
                        f"HTTP {resp.status_code} with Retry-After {wait:.0f}s "
                        f"(more than the {p.max_retry_after_s:.0f}s we wait)",
                    )
                if attempt > p.retries:
                    raise FetchError(self.source, url, f"HTTP {resp.status_code} after {attempt} attempts")
                self.sleep(self._backoff(attempt, wait))
                continue
            if resp.status_code in (404, 410):
                raise NotPublished(self.source, url, f"HTTP {resp.status_code} {resp.reason} (not retried)")
            if resp.status_code >= 400:
                hint = f": {p.auth_hint}" if p.auth_hint and resp.status_code in (401, 403) else ""
                raise FetchError(self.source, url, f"HTTP {resp.status_code} {resp.reason} (not retried){hint}")
            ctype = resp.headers.get("Content-Type", "")
            if p.content_types and not any(ctype.lower().startswith(t) for t in p.content_types):
                raise FetchError(
                    self.source, url, f"unexpected content type {ctype!r}; expected {list(p.content_types)}"
                )
            kept = {k: resp.headers[k] for k in resp.headers if k.lower() in KEPT_HEADERS}
            kept = {k.lower(): v for k, v in kept.items()}
            rec = RawRecord(
                source=self.source,
                url=url,
                final_url=final_url,
                status=resp.status_code,
                headers=kept,
                fetched_at=utc_now(),
                sha256="",
                size=len(body),
                user_agent=p.user_agent,
                parser_version=self.parser_version,
                mode=self.mode,
            )
            return body, store_raw(rec, body)

    def _retry_limit(self, exc: BaseException) -> int:
        """The only retry layer: transient failures get `retries` more tries; a failure no retry can
        fix (DNS, TLS, refused) gets one more try at most."""
        return self.policy.retries if failure_kind(exc) in TRANSIENT else min(1, self.policy.retries)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        p = self.policy
        if retry_after is not None:
            return min(retry_after, p.max_retry_after_s)
        expo = min(p.backoff_max_s, p.backoff_base_s * 2 ** (attempt - 1))
        return expo / 2 + random.uniform(0, expo / 2)  # "equal jitter"

    def _request(self, url: str, headers: dict):
        p = self.policy
        current = url
        real = expand_secrets(url, self.source)
        for _ in range(6):
            resp = self._session().get(
                real if current == url else current,
                headers=headers,
                timeout=(p.connect_timeout, p.read_timeout),
                stream=True,
                allow_redirects=False,
            )
            self.requests_made += 1
            if resp.is_redirect:
                target = urljoin(current, resp.headers.get("Location", ""))
                resp.close()
                if not _domain_ok(target, p.allowed_domains):
                    raise FetchError(self.source, url, f"redirected off the source's domains to {target}")
                current = target
                continue
            return resp, self._read_capped(resp, url), current
        raise FetchError(self.source, url, "too many redirects")

    def _read_capped(self, resp, url: str) -> bytes:
        p = self.policy
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > p.max_bytes:
            resp.close()
            raise FetchError(
                self.source,
                url,
                f"response of {int(declared)} bytes exceeds the cap of {p.max_bytes:,}: raise http.max_bytes under "
                f"{self.source} in {sources_path()}",
            )
        chunks, total = [], 0
        deadline = time.monotonic() + p.total_timeout_s
        try:
            for chunk in resp.iter_content(64 * 1024):
                if time.monotonic() > deadline:
                    resp.close()
                    raise _TruncatedBody(f"body not complete after {p.total_timeout_s:.0f}s (slow drip)")
                total += len(chunk)
                if total > p.max_bytes:
                    resp.close()
                    raise FetchError(
                        self.source,
                        url,
                        f"response exceeds the cap of {p.max_bytes:,} bytes: raise http.max_bytes under {self.source} "
                        f"in {sources_path()}",
                    )
                chunks.append(chunk)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise _TruncatedBody(f"body cut short: {exc}") from exc
        body = b"".join(chunks)
        if (
            declared
            and declared.isdigit()
            and resp.headers.get("Content-Encoding") is None
            and len(body) < int(declared)
        ):
            raise _TruncatedBody(f"body cut short: {len(body)} of {declared} bytes")
        return body


def _age_s(iso: str) -> float:

    try:
        return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return float("inf")


class _TruncatedBody(requests.ConnectionError):
    pass


# What went wrong with a request, for the retry decision and the message. Transient failures are
# retried with backoff; the others are retried once at most (a DNS name that does not resolve, a TLS
# handshake that fails or a refused connection are not fixed by waiting a few seconds).
TRANSIENT = ("timeout", "reset", "truncated", "connection")


def _causes(exc: BaseException):
    """The exception and its causes, outermost first (requests wraps urllib3, which wraps the socket error)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        nxt = e.__cause__ or e.__context__
        if nxt is None:
            nxt = next((a for a in e.args if isinstance(a, BaseException)), None)
            reason = getattr(e, "reason", None)
            nxt = nxt or (reason if isinstance(reason, BaseException) else None)
        e = nxt


def failure_kind(exc: BaseException) -> str:

    if isinstance(exc, _TruncatedBody):
        return "truncated"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exc, requests.Timeout):
        return "timeout"
    for e in _causes(exc):
        if isinstance(e, socket.gaierror) or "NameResolutionError" in type(e).__name__:
            return "dns"
        if isinstance(e, ssl.SSLError):
            return "tls"
        if isinstance(e, ConnectionRefusedError):
            return "refused"
        if isinstance(e, (ConnectionResetError, BrokenPipeError)):
            return "reset"
    text = str(exc)
    if (
        "Name or service not known" in text
        or "Temporary failure in name resolution" in text
        or "nodename nor servname" in text
        or "getaddrinfo failed" in text
    ):
        return "dns"
    if "Connection refused" in text:
        return "refused"
    return "connection"


_KIND_TEXT = {
    "dns": "DNS lookup failed",
    "tls": "TLS (SSL) handshake failed",
    "refused": "connection refused",
    "timeout": "timed out",
    "reset": "connection reset",
    "truncated": "body cut short",
    "connection": "connection failed",
}


def describe_failure(exc: BaseException) -> str:
    """'DNS lookup failed: [Errno -2] Name or service not known': the kind, then the innermost
    error's own words (the socket's or TLS library's), not the wrappers around it."""

    kind = failure_kind(exc)
    inner = next(
        (
            e
            for e in _causes(exc)
            if isinstance(e, (socket.gaierror, ssl.SSLError, OSError))
            and not isinstance(e, requests.RequestException)
            and str(e)
        ),
        None,
    )
    if inner is None and kind == "dns":
        m = re.search(r"\[Errno -?\d+\] [^)'\"]+", str(exc))
        return f"{_KIND_TEXT[kind]}: {m.group(0) if m else exc}"
    return f"{_KIND_TEXT[kind]}: {inner if inner is not None else exc}"
