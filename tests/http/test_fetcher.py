"""The HTTP layer against a scripted local server: retries, limits, robots, conditional requests."""

import hashlib
from pathlib import Path

import pytest

from tasks.errors import FetchError, ReplayMissingError
from tasks.http import Fetcher, HttpPolicy, Recordings, parse_retry_after


class Clock:
    """Fake sleep/clock: records the waits instead of sleeping."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def sleep(self, s):
        self.sleeps.append(round(s, 3))
        self.now += s

    def clock(self):
        return self.now


def fetcher(server, data_home, **policy):
    c = Clock()
    p = HttpPolicy(
        allowed_domains=("127.0.0.1",),
        min_interval_s=0.0,
        retries=3,
        backoff_base_s=1.0,
        read_timeout=1.0,
        connect_timeout=1.0,
        **policy,
    )
    f = Fetcher(source="numbeo", mode="online", policy=p, sleep=c.sleep, clock=c.clock)
    return f, c


def test_ok_response_is_stored_with_metadata(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add(
        "/page",
        {"body": b"<html>ok</html>", "etag": '"v1"', "headers": {"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"}},
    )
    f, _ = fetcher(server, data_home)
    rec = f.get(server.base + "/page")
    assert rec.status == 200 and rec.read() == b"<html>ok</html>" and rec.size == 15
    assert rec.headers["etag"] == '"v1"' and rec.user_agent.startswith("city-talent-index")
    assert len(rec.sha256) == 64 and rec.mode == "online"


def test_429_with_retry_after_is_honoured(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/p", {"status": 429, "headers": {"Retry-After": "7"}}, {"body": b"fine"})
    f, c = fetcher(server, data_home)
    assert f.get(server.base + "/p").read() == b"fine"
    assert c.sleeps == [7.0] and server.hits["/p"] == 2


def test_429_without_retry_after_backs_off_exponentially_with_jitter(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/p", {"status": 429}, {"status": 429}, {"status": 429}, {"body": b"fine"})
    f, c = fetcher(server, data_home)
    assert f.get(server.base + "/p").read() == b"fine"
    assert len(c.sleeps) == 3
    for wait, base in zip(c.sleeps, (1, 2, 4), strict=True):
        assert base / 2 <= wait <= base


def test_burst_of_5xx_gives_up_after_the_retries(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/p", {"status": 503})
    f, c = fetcher(server, data_home)
    with pytest.raises(FetchError, match="HTTP 503 after 4 attempts"):
        f.get(server.base + "/p")
    assert server.hits["/p"] == 4 and len(c.sleeps) == 3


def test_other_4xx_is_not_retried(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/p", {"status": 403, "body": b"forbidden"})
    f, c = fetcher(server, data_home)
    with pytest.raises(FetchError, match="HTTP 403 .*not retried"):
        f.get(server.base + "/p")
    assert server.hits["/p"] == 1 and c.sleeps == []


def test_retry_after_longer_than_we_wait_fails_fast(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/p", {"status": 503, "headers": {"Retry-After": "86400"}})
    f, _ = fetcher(server, data_home)
    with pytest.raises(FetchError, match="Retry-After 86400s"):
        f.get(server.base + "/p")


def test_timeout_is_retried_then_reported(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/slow", {"sleep": 1.5, "body": b"late"})
    f, c = fetcher(
        server,
        data_home,
    )
    f.policy.retries = 1
    with pytest.raises(FetchError, match="gave up after 2 attempts"):
        f.get(server.base + "/slow")
    assert len(c.sleeps) == 1


def test_truncated_body_is_retried(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/t", {"body": b"short", "content_length": 100, "close": True}, {"body": b"complete"})
    f, _ = fetcher(server, data_home)
    assert f.get(server.base + "/t").read() == b"complete"
    assert server.hits["/t"] == 2


def test_oversized_body_is_refused(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/big", {"body": b"x" * 5000})
    f, _ = fetcher(server, data_home, max_bytes=1000)
    with pytest.raises(
        FetchError, match="exceeds the cap of 1,000: raise http.max_bytes under numbeo in .*sources.yaml"
    ):
        f.get(server.base + "/big")


def test_oversized_body_without_content_length_is_refused_while_streaming(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/big", {"body": b"y" * 300_000, "content_length": None, "drip": 65536, "drip_sleep": 0})
    f, _ = fetcher(server, data_home, max_bytes=100_000)
    with pytest.raises(FetchError, match="exceeds the cap of 100,000 bytes: raise http.max_bytes"):
        f.get(server.base + "/big")


def test_a_local_file_has_its_own_cap_not_the_downloads(tmp_path, data_home):
    """A curated table bigger than a download may be (62 MB at 100,000 cities) is read; one bigger
    than the local cap is refused naming the setting to raise."""
    from tasks.http import Fetcher, HttpPolicy

    table = tmp_path / "table.csv"
    table.write_bytes(b"x" * 5000)
    f = Fetcher("curated", mode="online", policy=HttpPolicy(max_bytes=1000))
    assert f.get(f"file://{table}").read() == b"x" * 5000
    small = Fetcher("curated", mode="online", policy=HttpPolicy(max_bytes=1000, max_file_bytes=4000))
    with pytest.raises(
        FetchError,
        match=r"larger than the 4,000 bytes read of a local file: raise http.max_file_bytes under curated in",
    ):
        small.get(f"file://{table}")


def test_redirect_off_domain_is_refused(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/r", {"status": 302, "headers": {"Location": "https://evil.example.com/x"}})
    f, _ = fetcher(server, data_home)
    with pytest.raises(FetchError, match="redirected off the source's domains to https://evil.example.com/x"):
        f.get(server.base + "/r")


def test_redirect_within_domain_is_followed(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/old", {"status": 301, "headers": {"Location": "/new"}})
    server.add("/new", {"body": b"moved"})
    f, _ = fetcher(server, data_home)
    rec = f.get(server.base + "/old")
    assert rec.read() == b"moved" and rec.final_url.endswith("/new")


def test_robots_disallow_and_crawl_delay(server, data_home):
    server.add(
        "/robots.txt", {"body": b"User-agent: *\nCrawl-delay: 5\nDisallow: /private\n", "content_type": "text/plain"}
    )
    server.add("/public", {"body": b"a"})
    server.add("/public2", {"body": b"b"})
    f, c = fetcher(server, data_home)
    with pytest.raises(FetchError, match="robots.txt disallows"):
        f.get(server.base + "/private/x")
    assert "/private/x" not in server.hits
    f.get(server.base + "/public")
    f.get(server.base + "/public2")
    assert f.policy.min_interval_s == 5.0 and 5.0 in c.sleeps


@pytest.mark.parametrize("status,allowed", [(404, True), (410, True), (500, False), (503, False)])
def test_robots_4xx_allows_and_5xx_disallows(server, data_home, status, allowed):
    """RFC 9309: a robots.txt that answers 4xx means no rules; 5xx means the host is off limits."""
    server.add("/robots.txt", {"status": status})
    server.add("/page", {"body": b"a"})
    f, _ = fetcher(server, data_home)
    if allowed:
        assert f.get(server.base + "/page").read() == b"a"
    else:
        with pytest.raises(
            FetchError,
            match=rf"robots.txt answered HTTP {status}: RFC 9309 treats that as "
            "disallowing every URL of the host",
        ):
            f.get(server.base + "/page")
        assert "/page" not in server.hits


def test_dns_failure_is_tried_twice_at_most_and_named(data_home, monkeypatch):
    """A host name that does not resolve: one retry (not the whole budget of 3), then an error that
    says it is a DNS failure."""
    import socket

    calls = []

    def no_dns(host, *a, **k):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    c = Clock()
    f = Fetcher(
        source="gawc",
        mode="online",
        sleep=c.sleep,
        clock=c.clock,
        policy=HttpPolicy(allowed_domains=("nowhere.invalid",), min_interval_s=0, retries=3, obey_robots=False),
    )
    with pytest.raises(
        FetchError,
        match=r"\[source gawc, https://nowhere.invalid/x\] gave up after 2 attempts: "
        r"DNS lookup failed: .*Name or service not known",
    ):
        f.get("https://nowhere.invalid/x")
    assert calls == ["nowhere.invalid", "nowhere.invalid"] and len(c.sleeps) == 1


def test_refused_connection_is_tried_twice_at_most(data_home):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    c = Clock()
    f = Fetcher(
        source="gawc",
        mode="online",
        sleep=c.sleep,
        clock=c.clock,
        policy=HttpPolicy(allowed_domains=("127.0.0.1",), min_interval_s=0, retries=4),
    )
    with pytest.raises(
        FetchError,
        match=r"robots.txt of http://127.0.0.1:\d+ unreachable, gave up after 2 attempts: "
        r"connection refused",
    ):
        f.get(f"http://127.0.0.1:{port}/page")
    assert len(c.sleeps) == 1


def test_conditional_request_reuses_the_stored_body(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/page", {"body": b"<html>v1</html>", "etag": '"abc"'})
    f, _ = fetcher(server, data_home, reuse_within_s=0)
    first = f.get(server.base + "/page")
    second = f.get(server.base + "/page")
    assert server.headers_seen["/page"][1].get("If-None-Match") == '"abc"'
    assert second.reused and second.sha256 == first.sha256
    objects = [p for p in (data_home / "raw" / "numbeo" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 1


def test_content_type_check(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/img", {"body": b"\x89PNG", "content_type": "image/png"})
    f, _ = fetcher(server, data_home, content_types=("text/html",))
    with pytest.raises(FetchError, match="unexpected content type 'image/png'"):
        f.get(server.base + "/img")


def test_host_outside_allowed_domains_is_not_contacted(data_home):
    f = Fetcher(source="numbeo", mode="online", policy=HttpPolicy(allowed_domains=("numbeo.com",)))
    with pytest.raises(FetchError, match="not one of this source's domains"):
        f.get("https://www.numbeo.com.evil.org/x")


def test_offline_replay_and_missing_recording(data_home, recordings):
    import hashlib

    f = Fetcher(source="numbeo", mode="offline")
    rec = f.get("https://www.numbeo.com/quality-of-life/rankings.jsp?title=2020")
    assert rec.mode == "offline" and b'id="t2"' in rec.read()
    # read in place: the recording is the raw response (path and sha256 for provenance), nothing copied
    recording = recordings / "2020" / "numbeo" / "quality-of-life-rankings-2020.html"
    assert rec.path == "2020/numbeo/quality-of-life-rankings-2020.html" and rec.root == "recordings"
    assert rec.file == recording and rec.sha256 == hashlib.sha256(recording.read_bytes()).hexdigest()
    assert not (data_home / "raw").exists()
    with pytest.raises(ReplayMissingError, match="offline mode: no recording for this URL"):
        f.get("https://www.numbeo.com/quality-of-life/rankings.jsp?title=1999")


def test_a_fetch_hands_over_the_body_it_read_once(data_home, recordings, monkeypatch):
    """The replay read the file to hash it: the first read() is that body, not a second read of the
    file; later reads go to the file."""
    f = Fetcher(source="numbeo", mode="offline")
    rec = f.get("https://www.numbeo.com/quality-of-life/rankings.jsp?title=2020")
    reads: list[str] = []
    original = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path.name)
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    first = rec.read()
    assert reads == [] and len(first) == rec.size and hashlib.sha256(first).hexdigest() == rec.sha256
    assert rec.read() == first and reads == ["quality-of-life-rankings-2020.html"]


def test_record_mode_saves_a_replayable_recording(server, data_home, tmp_path):
    server.add("/robots.txt", {"status": 404})
    server.add("/rec", {"body": b"<html>recorded</html>"})
    rec_dir = tmp_path / "recordings"
    c = Clock()
    f = Fetcher(
        source="numbeo",
        mode="record",
        recordings=Recordings(rec_dir, edition="2021"),
        sleep=c.sleep,
        clock=c.clock,
        policy=HttpPolicy(allowed_domains=("127.0.0.1",), min_interval_s=0),
    )
    f.get(server.base + "/rec", recording_name="rec.html")
    replay = Fetcher(source="numbeo", mode="offline", recordings=Recordings(rec_dir))  # the newest edition it holds
    assert replay.recordings is not None and replay.recordings.edition == "2021"
    assert replay.get(server.base + "/rec").read() == b"<html>recorded</html>"
    assert (rec_dir / "2021" / "numbeo" / "rec.html").exists()


def test_per_host_rate_limit_spaces_requests(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/a", {"body": b"a"})
    server.add("/b", {"body": b"b"})
    f, c = fetcher(server, data_home)
    f.policy.min_interval_s = 3.0
    f.get(server.base + "/a")
    f.get(server.base + "/b")
    assert any(2.9 <= s <= 3.0 for s in c.sleeps)


@pytest.mark.parametrize("value,seconds", [("120", 120.0), (None, None), ("soon", None)])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_secret_placeholder_is_filled_at_request_time_and_never_stored(server, data_home, monkeypatch):
    monkeypatch.setenv("NUMBEO_API_KEY", "s3cr3t-key")
    server.add("/robots.txt", {"status": 404})
    server.add("/api?api_key=s3cr3t-key&query=Beijing", {"body": b'{"ok": 1}', "content_type": "application/json"})
    f, _ = fetcher(server, data_home)
    rec = f.get(server.base + "/api?api_key=${NUMBEO_API_KEY}&query=Beijing")
    assert rec.read() == b'{"ok": 1}' and "${NUMBEO_API_KEY}" in rec.url
    stored = "".join(p.read_text(errors="ignore") for p in (data_home / "raw").rglob("*") if p.is_file())
    assert "s3cr3t-key" not in stored


def test_secret_is_not_in_error_messages(server, data_home, monkeypatch):
    monkeypatch.setenv("NUMBEO_API_KEY", "s3cr3t-key")
    server.add("/robots.txt", {"status": 404})
    server.add("/api?api_key=s3cr3t-key", {"status": 503})
    f, _ = fetcher(server, data_home)
    with pytest.raises(FetchError) as info:
        f.get(server.base + "/api?api_key=${NUMBEO_API_KEY}")
    assert "s3cr3t-key" not in str(info.value)


def test_slow_drip_hits_the_total_deadline(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/drip", {"body": b"z" * 40, "drip": 2, "drip_sleep": 0.1})
    f, _ = fetcher(server, data_home, total_timeout_s=0.5)
    f.policy.retries = 0
    with pytest.raises(FetchError, match="slow drip"):
        f.get(server.base + "/drip")


def test_rerun_within_the_reuse_window_does_not_fetch_again(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/page", {"body": b"<html>v1</html>"})
    f, _ = fetcher(server, data_home)
    first = f.get(server.base + "/page")
    again, _ = fetcher(server, data_home)
    second = again.get(server.base + "/page")
    assert server.hits["/page"] == 1 and second.reused and second.sha256 == first.sha256
    assert again.requests_made == 0


def test_online_run_after_an_offline_replay_fetches_for_real(server, data_home, tmp_path):
    """A replayed recording never counts as a fresh online response."""
    url = server.base + "/page"
    rec_dir = tmp_path / "recordings"
    Recordings(rec_dir).add("numbeo", url, b"<html>recorded</html>", 200, {}, "page.html")
    replayed = Fetcher(source="numbeo", mode="offline", recordings=Recordings(rec_dir)).get(url)
    assert replayed.read() == b"<html>recorded</html>"
    server.add("/robots.txt", {"status": 404})
    server.add("/page", {"body": b"<html>live</html>"})
    f, _ = fetcher(server, data_home)
    live = f.get(url)
    assert server.hits["/page"] == 1 and not live.reused and live.read() == b"<html>live</html>"


def test_a_refused_download_says_what_the_source_configures_for_it_and_extra_headers_are_sent(server, data_home):
    server.add("/robots.txt", {"status": 404})
    server.add("/tile.h5", {"status": 401, "body": b"no"})
    server.add("/api", {"body": b"{}"})
    f, _ = fetcher(server, data_home, auth_hint="Earthdata token missing or expired (EARTHDATA_TOKEN)")
    with pytest.raises(
        FetchError,
        match=r"HTTP 401 Unauthorized \(not retried\): Earthdata token missing or expired \(EARTHDATA_TOKEN\)",
    ):
        f.get(server.base + "/tile.h5")
    f.get(server.base + "/api", headers={"Referer": "https://x/rank", "X-Requested-With": "XMLHttpRequest"})
    seen = server.headers_seen["/api"][-1]
    assert seen["Referer"] == "https://x/rank" and seen["X-Requested-With"] == "XMLHttpRequest"
    assert "Referer" not in server.headers_seen["/tile.h5"][-1]  # only the request that asked for them


def test_a_recording_outside_the_recordings_root_is_read_and_a_lost_one_named(data_home, tmp_path):
    """Recordings kept elsewhere are replayed with their absolute path; a recording its index lists
    but that is gone stops the source with one line naming the file and the index."""
    url = "https://example.org/page"
    rec_dir = tmp_path / "elsewhere"
    Recordings(rec_dir).add("numbeo", url, b"<html>recorded</html>", 200, {}, "page.html")
    replayed = Fetcher(source="numbeo", mode="offline", recordings=Recordings(rec_dir)).get(url)
    page = rec_dir / "2020" / "numbeo" / "page.html"
    assert replayed.read() == b"<html>recorded</html>" and replayed.path == str(page.resolve())
    page.unlink()
    with pytest.raises(FetchError) as err:
        Fetcher(source="numbeo", mode="offline", recordings=Recordings(rec_dir)).get(url)
    assert f"the recording {page} listed in {rec_dir / '2020' / 'index.json'} cannot be read" in str(err.value)
    assert "No such file or directory" in str(err.value)
