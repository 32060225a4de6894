"""A source that does not cover a city (HTTP 404 or 410 for that city's page, online or as
recorded) leaves the city's values missing; a 404 for a page of all cities stops the source."""

from __future__ import annotations

import pytest

from tasks.errors import FetchError, NotPublished
from tasks.ingest.core import _fetch_rounds
from tasks.sources.base import Request, Source


class Toy(Source):
    name = "toy"

    def plan(self, cfg, registry, done):
        first = Request("list", "https://x.test/list")
        if first not in done:
            return [first]
        return [Request("city", f"https://x.test/{c}", c) for c in ("a", "b", "c")]

    def parse(self, req, body, registry, cfg=None):
        return body.decode()


class Raw:
    def __init__(self, body: bytes):
        self.body, self.path, self.root, self.sha256, self.size = body, "p", "r", "s", len(body)
        self.fetched_at, self.mode, self.reused = "t", "offline", False

    def read(self) -> bytes:
        return self.body


class Fetcher:
    def __init__(self, missing: set[str]):
        self.missing = missing

    def get(self, url: str, headers: dict | None = None) -> Raw:
        if url in self.missing:
            raise NotPublished("toy", url, "HTTP 404 Not Found (not retried)")
        return Raw(url.encode())


def test_a_city_the_source_does_not_publish_is_left_missing():
    parsed: dict = {}
    raws: list = []
    said: list[str] = []
    _fetch_rounds(Toy(), {}, None, Fetcher({"https://x.test/b"}), parsed, raws, said.append, "online")
    assert sorted(r.city_id or "" for r in parsed) == ["", "a", "c"]
    assert len(raws) == 3
    assert "toy: b not published (HTTP 404 Not Found (not retried)): its values are missing" in said


def test_a_page_of_all_cities_that_is_not_published_stops_the_source():
    with pytest.raises(FetchError, match=r"\[source toy, https://x.test/list\] HTTP 404"):
        _fetch_rounds(Toy(), {}, None, Fetcher({"https://x.test/list"}), {}, [], None, "online")
