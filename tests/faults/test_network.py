"""Network faults through a whole source ingestion (GaWC against a loopback server): the outcome,
the message (source and URL), and nothing earlier lost."""

import pytest

from tasks.errors import FetchError
from tasks.http import Fetcher, HttpPolicy
from tasks.ingest.core import fetch_and_parse, ingest
from tasks.registry.cities import load_registry
from tasks.sources import load_sources_config

from .conftest import ROOT, assert_nothing_lost

TIERS = (ROOT / "data/recordings/2020/gawc/world2020t.html").read_bytes()
XLSX = (ROOT / "data/recordings/2020/gawc/connectivity-2020.xlsx").read_bytes()
OK_XLSX = {"body": XLSX, "content_type": "application/octet-stream"}


class Waits(list):
    def __call__(self, s):
        self.append(s)


def setup(server, *xlsx_responses, **policy):
    server.add("/robots.txt", {"status": 404})
    server.add("/world2020t.html", {"body": TIERS})
    server.add("/da31.xlsx", *xlsx_responses)
    cfg = {
        **load_sources_config()["gawc"],
        "tiers_url": server.base + "/world2020t.html",
        "connectivity_url": server.base + "/da31.xlsx",
    }
    waits = Waits()
    fetcher = Fetcher(
        source="gawc",
        mode="online",
        sleep=waits,
        reuse_raw=False,
        policy=HttpPolicy(allowed_domains=("127.0.0.1",), min_interval_s=0, retries=3, read_timeout=1.0, **policy),
    )
    return cfg, fetcher, waits


def test_429_with_retry_after_then_success(home, server):
    h, before = home
    cfg, f, waits = setup(server, {"status": 429, "headers": {"Retry-After": "3"}}, OK_XLSX)
    fetched = fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert len(fetched.parsed) == 2 and waits == [3.0]
    assert_nothing_lost(h, before)


def test_429_without_retry_after_then_success(home, server):
    h, before = home
    cfg, f, waits = setup(server, {"status": 429}, {"status": 429}, OK_XLSX)
    fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0
    assert_nothing_lost(h, before)


def test_burst_of_5xx_fails_the_source_and_names_the_url(home, server):
    h, before = home
    cfg, f, waits = setup(server, {"status": 502}, {"status": 503}, {"status": 500}, {"status": 504}, OK_XLSX)
    with pytest.raises(FetchError, match=r"\[source gawc, http://127.0.0.1:\d+/da31.xlsx\] HTTP 504 after 4 attempts"):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert_nothing_lost(h, before)


def test_connection_reset_is_retried(home, server):
    h, before = home
    cfg, f, waits = setup(server, {"reset": True}, OK_XLSX)
    fetched = fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert len(fetched.parsed) == 2 and len(waits) == 1
    assert_nothing_lost(h, before)


def test_timeout_then_give_up(home, server):
    h, before = home
    cfg, f, waits = setup(server, {"sleep": 1.5, "body": XLSX})
    f.policy.retries = 1
    with pytest.raises(FetchError, match="da31.xlsx\\] gave up after 2 attempts"):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert_nothing_lost(h, before)


def test_slow_drip_is_cut_by_the_total_deadline(home, server):
    h, before = home
    cfg, f, waits = setup(server, {"body": XLSX[:400], "drip": 20, "drip_sleep": 0.05}, total_timeout_s=0.3)
    f.policy.retries = 0
    with pytest.raises(FetchError, match="slow drip"):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert_nothing_lost(h, before)


def test_oversized_body(home, server):
    h, before = home
    cfg, f, _ = setup(server, OK_XLSX, max_bytes=5000)
    with pytest.raises(
        FetchError, match=r"exceeds the cap of 5,000: raise http.max_bytes under gawc in .*sources.yaml"
    ):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert_nothing_lost(h, before)


def test_redirect_to_another_domain(home, server):
    h, before = home
    cfg, f, _ = setup(server, {"status": 302, "headers": {"Location": "https://mirror.example.net/da31.xlsx"}})
    with pytest.raises(FetchError, match="redirected off the source's domains to https://mirror.example.net"):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert_nothing_lost(h, before)


def test_tls_failure(home, server):
    """https:// to a server that speaks plain HTTP: the TLS handshake fails (robots.txt first), tried
    twice at most whatever the retry budget (no retry fixes it), then reported as a TLS failure; an
    unreachable robots.txt disallows the host (RFC 9309)."""
    h, before = home
    cfg, f, waits = setup(server, OK_XLSX)
    cfg["connectivity_url"] = f"https://127.0.0.1:{server.port}/da31.xlsx"
    assert f.policy.retries == 3
    with pytest.raises(
        FetchError,
        match=r"https://127.0.0.1:\d+/da31.xlsx\] robots.txt of https://127.0.0.1:\d+ "
        r"unreachable, gave up after 2 attempts: TLS \(SSL\) handshake failed: .*SSL.*"
        r"RFC 9309 treats that as disallowing",
    ):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f)
    assert len(waits) == 1
    assert_nothing_lost(h, before)


def test_success_after_faults_writes_a_valid_snapshot(home, server):
    h, before = home
    cfg, f, _ = setup(server, {"status": 503}, OK_XLSX)
    cfg["http"] = {**cfg["http"], "allowed_domains": ["127.0.0.1"], "min_interval_s": 0, "backoff_base_s": 0.1}
    result = ingest("gawc", cfg, "online", load_registry())  # its own fetcher, real (short) backoff
    assert result.snapshot["reused"]  # identical content to the baseline snapshot
    assert_nothing_lost(h, before)
