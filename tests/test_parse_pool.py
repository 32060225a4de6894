"""The parse pool's hand-over (tasks/ingest/parse_pool.py), with an executor whose batches finish
only when told to: while the workers start, batches beyond what they hold are parsed in the run's
process; once they serve, every batch goes to them; records and errors come back in request
order, and what waits is bounded."""

import json
from concurrent.futures import Future
from typing import cast

import pytest

from tasks.errors import SourceError
from tasks.ingest import parse_pool
from tasks.sources import load_sources_config, source_spec
from tasks.sources.base import Request
from tasks.sources.numbeo import prices_url


class Held(Future):
    """A batch sent to a 'worker': parsed (in this process) only when `finish` or `result` is called."""

    def __init__(self, fn, args):
        super().__init__()
        self.fn, self.args = fn, args

    def finish(self) -> None:
        if not self.done():
            try:
                self.set_result(self.fn(*self.args))
            except Exception as exc:  # noqa: BLE001 - handed to the pool as a worker's error is
                self.set_exception(exc)

    def result(self, timeout=None):
        self.finish()
        return super().result(timeout)


class HeldExecutor:
    def __init__(self):
        self.sent: list[Held] = []

    def submit(self, fn, *args):
        self.sent.append(Held(fn, args))
        return self.sent[-1]

    def shutdown(self, wait=True, cancel_futures=False):
        pass


@pytest.fixture()
def pages(registry, recordings):
    """The 30 recorded 2020 price pages as (request, body), in registry order."""
    cfg = load_sources_config(edition="2020")["numbeo"]
    index = json.loads((recordings / "2020" / "index.json").read_text())
    out = []
    for cid in registry.ids:
        url = prices_url(cfg, str(registry.get(cid)["numbeo_slug"]))
        out.append(
            (Request("numbeo-city-prices", url, city_id=cid), (recordings / "2020" / index[url]["file"]).read_bytes())
        )
    return cfg, out


@pytest.fixture()
def held(monkeypatch):
    executor = HeldExecutor()
    monkeypatch.setattr(parse_pool, "_executor", lambda *a, **k: executor)
    monkeypatch.setattr(parse_pool, "BATCH", 2)
    monkeypatch.setattr(parse_pool, "BUSY", 2)
    return executor


def test_batches_beyond_the_busy_workers_are_parsed_here_records_in_request_order(registry, pages, held):
    cfg, reqs = pages
    spec = source_spec("numbeo", cfg)
    expected = [(req, spec.parse(req, body, registry, cfg)) for req, body in reqs]
    with parse_pool.ParsePool("numbeo", cfg, registry, 2) as pool:
        got: list[tuple[Request, object]] = []
        for req, body in reqs:
            pool.submit(req, body)
            got.extend(pool.ready())
        # 2 workers x BUSY 2 batches of 2 pages went to the workers; the other 22 pages were parsed here
        assert len(held.sent) == 4 and pool.parsed_here == 22
        assert got == []  # nothing given back while the oldest batch waits in a worker
        held.sent[0].finish()
        got.extend(pool.ready())
        assert [r.city_id for r, _ in got] == [r.city_id for r, _ in reqs[:2]]
        got.extend(pool.drain())
    assert got == expected and len(got) == 30
    beijing = cast(dict, {r.city_id: v for r, v in got}["beijing"])
    assert beijing["monthly_net_salary"]["value"] == 1137.26


def test_once_a_worker_gave_back_a_batch_every_batch_goes_to_the_workers(registry, pages, held):
    """The workers are up: the run's process no longer parses; it waits for the oldest batch when
    they hold more than BUSY each."""
    cfg, reqs = pages
    with parse_pool.ParsePool("numbeo", cfg, registry, 1) as pool:
        for req, body in reqs[:4]:
            pool.submit(req, body)
        held.sent[0].finish()
        given: list[tuple[Request, object]] = []
        for req, body in reqs[4:12]:
            pool.submit(req, body)
            given.extend(pool.ready())
        assert len(held.sent) == 6 and pool.parsed_here == 0
        # each batch sent made three held: the oldest was waited for, so two stay held
        assert [r.city_id for r, _ in given] == [r.city_id for r, _ in reqs[:8]]
        assert [f.done() for f in held.sent] == [True, True, True, True, False, False]
        assert len(list(pool.drain())) == 4


def test_the_first_bad_page_in_request_order_is_the_error_wherever_it_was_parsed(registry, pages, held):
    cfg, reqs = pages
    bad = {1: b"<html><body>no table</body></html>", 20: b"<html><body>nor here</body></html>"}
    with parse_pool.ParsePool("numbeo", cfg, registry, 2) as pool:
        for n, (req, body) in enumerate(reqs):
            pool.submit(req, bad.get(n, body))  # page 20, parsed here, fails without raising yet
        assert pool.parsed_here == 22
        with pytest.raises(SourceError) as err:
            list(pool.drain())
    assert err.value.city == reqs[1][0].city_id and "data_wide_table" in str(err.value)
    assert "\n" not in str(err.value)


def test_records_waiting_behind_a_slow_batch_are_bounded(registry, pages, held, monkeypatch):
    monkeypatch.setattr(parse_pool, "MAX_QUEUED", 5)
    cfg, reqs = pages
    with parse_pool.ParsePool("numbeo", cfg, registry, 2) as pool:
        given: list[tuple[Request, object]] = []
        for req, body in reqs[:12]:
            pool.submit(req, body)
            given.extend(pool.ready())
        # the sixth batch made six waiting: the oldest (in a worker) was waited for and given back
        assert [r.city_id for r, _ in given] == [r.city_id for r, _ in reqs[:2]]
        assert len(list(pool.drain())) == 10
