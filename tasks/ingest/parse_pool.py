"""Per-city pages parsed in worker processes while the run's own process keeps replaying.

A 100,000-city replay spends most of its time parsing one page (or night-light clip) per city, one
after the other, on one core. Parsing is pure (a page and the registry in, a record out), so a
round of many per-city pages is parsed by a pool of processes instead: the run's process reads
each recording in request order and hands the pages over in batches (while the workers start, it
parses the batches beyond what they hold itself); the records come back and are stored in request
order, so what is parsed (and the snapshot's content id) is what parsing in process gives. A page
that cannot be parsed stops the source with the same one-line error, naming the page and the city
(the first bad page in request order).

Used only where it pays and can: for a source whose pages cost more to parse than to hand over
(`Source.city_pages_in_workers`: Numbeo's city pages and the night-light clips), offline
(online, the polite fetcher's delay is the cost, not parsing), for a round of at least `MIN_PAGES`
per-city pages, on a machine with more than one CPU, in a process that may start processes (not a
Dask worker). The first page of a round is parsed in process before any worker starts, so a
changed layout fails at once. `TALENT_INDEX_PARSE_WORKERS` sets the number of workers (0: parse in
process).

A single large page (a ranking of every city: `BIG_PAGE_BYTES` or more), in any mode, is parsed in
a worker process (a started one if any, else one of its own), for memory, not time: the run's
process never holds its tree.

The workers are spawned, not forked (the run's process has Prefect's threads running); each
imports the source modules and receives the registry once per round (through a file). A script
that calls the ingest at this scale therefore needs the `if __name__ == "__main__":` guard, as any
program using spawned processes does; the CLI, the flows and the tests have it.

A worker's start (an interpreter, then the source modules and their libraries) takes a second or
so of CPU. A refresh starts its workers before its first source (`start_workers`), so that this
happens on the CPUs its first sources leave idle, not at the start of the round that needs them;
the round then hands its pages to those workers, and the refresh stops them after its last source
(`stop_workers`). A round in any other ingest starts and stops workers of its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tasks.errors import FetchError, PipelineError, SourceError, with_city
from tasks.sources import source_spec
from tasks.sources.base import Request

WORKERS_ENV = "TALENT_INDEX_PARSE_WORKERS"
MIN_PAGES = 1000  # per-city pages in a round below which starting workers costs more than it saves
BATCH = 64  # pages per message to a worker
BUSY = 4  # batches per worker sent and not given back (beyond them: parsed here while they start, else waited for)
MAX_QUEUED = 64  # batches parsed and not yet given back (bounds the records waiting behind a slow batch)
MAX_WORKERS = 8
BIG_PAGE_BYTES = 16 * 2**20  # a page at least this large is parsed in a worker process (`parse_apart`)


def parse_workers(pages: int, mode: str) -> int:
    """How many worker processes parse a round of `pages` per-city pages (0: in process). Set
    explicitly (`TALENT_INDEX_PARSE_WORKERS`), it applies to any offline round with more than one
    per-city page; by default, one worker per CPU (at most `MAX_WORKERS`) for `MIN_PAGES` or more."""
    if mode != "offline" or pages < 2 or multiprocessing.current_process().daemon:
        return 0  # a daemonic process (a Dask worker's) may not start processes
    setting = os.environ.get(WORKERS_ENV, "").strip()
    if setting:
        try:
            wanted = int(setting)
        except ValueError:
            raise PipelineError(
                f"{WORKERS_ENV}={setting!r}: expected a whole number of worker processes (0 parses in the run's process)"
            ) from None
        if wanted < 0:
            raise PipelineError(f"{WORKERS_ENV}={setting!r}: expected 0 or more worker processes")
        return wanted
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, MAX_WORKERS) if cpus > 1 and pages >= MIN_PAGES else 0


def parse_apart(body_size: int) -> bool:
    """Whether a page of `body_size` bytes is parsed in a worker process (`parse_one_apart`):
    at `BIG_PAGE_BYTES` or more, where processes may be started and are not turned off
    (`TALENT_INDEX_PARSE_WORKERS=0`)."""
    if body_size < BIG_PAGE_BYTES or multiprocessing.current_process().daemon:
        return False
    return os.environ.get(WORKERS_ENV, "").strip() != "0"


def parse_one_apart(source: str, cfg: dict, registry, req: Request, body: bytes) -> object:
    """`Source.parse` of one large page (a ranking of every city) in a worker process: its tree takes
    many times the page's size while it is parsed, and the allocators of the run's process would
    keep most of it for the rest of the run. The record is what parsing in process gives; an
    error is the same one-line error."""
    with ParsePool(source, cfg, registry, min(_STARTED, default=1)) as pool:  # a started worker if any
        pool.submit(req, body)
        ((_, record),) = list(pool.drain())
    return record


# ----------------------------------------------------------------------------- in the workers
_WORKER: dict = {}
_Setup = tuple[str, dict, str]  # a round's source, its configuration and the file holding the registry


def _warm_up(setups: list[tuple[str, dict]]) -> None:
    """A started worker's imports, before any round: the source modules and what their parse
    context needs (rasterio and GDAL for the night-light clips). Whatever fails here fails again,
    with its message, in the round that needs it (`_use_setup`): a failed initializer would
    instead break the executor and hide the cause."""
    for source, cfg in setups:
        with contextlib.suppress(Exception), source_spec(source, cfg).parse_context():
            pass


def _noop() -> None:
    """A task that makes the executor start one more worker (it starts them as tasks arrive)."""


def _use_setup(setup: _Setup) -> None:
    """The round's source, configuration and registry in this worker (kept for its later batches)."""
    if _WORKER.get("setup") == setup:
        return
    if "context" in _WORKER:
        _WORKER.pop("context").__exit__(None, None, None)
    source, cfg, registry_file = setup
    with open(registry_file, "rb") as fh:
        registry = pickle.load(fh)
    spec = source_spec(source, cfg)
    context = spec.parse_context()
    context.__enter__()  # held for the round (a GDAL environment for the clips)
    _WORKER.update(setup=setup, spec=spec, cfg=cfg, registry=registry, context=context)


def _parse_batch(setup: _Setup, batch: list[tuple[Request, bytes]]) -> list[object]:
    _use_setup(setup)
    return _parse_pages(_WORKER["spec"], _WORKER["cfg"], _WORKER["registry"], batch)


def _parse_pages(spec, cfg: dict, registry, batch: list[tuple[Request, bytes]]) -> list[object]:
    """`Source.parse` of each page, an error naming the page's city (in a worker or in the run's process)."""
    out = []
    for req, body in batch:
        try:
            out.append(spec.parse(req, body, registry, cfg))
        except (FetchError, SourceError) as exc:
            raise with_city(exc, req.city_id) from None
    return out


_Parsed = Future | list | PipelineError  # a batch's records: being parsed by a worker, parsed, or failed


# ----------------------------------------------------------------------------- in the run's process
_STARTED: dict[int, ProcessPoolExecutor] = {}  # the workers `start_workers` started, by their number


def _executor(workers: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer, initargs=initargs
    )


def start_workers(workers: int, setups: list[tuple[str, dict]]) -> None:
    """Start `workers` worker processes now, each importing what the sources of `setups` (source,
    configuration) parse with; a later round of `workers` workers uses them (`ParsePool`) until
    `stop_workers`. Nothing to do for 0 workers or when they are already started."""
    if workers < 1 or workers in _STARTED:
        return
    executor = _executor(workers, _warm_up, (setups,))
    for _ in range(workers):  # the executor starts a process per task while none is idle
        executor.submit(_noop)
    _STARTED[workers] = executor


def stop_workers() -> None:
    """Stop the workers `start_workers` started (waiting for them to exit)."""
    while _STARTED:
        _, executor = _STARTED.popitem()
        executor.shutdown(wait=True, cancel_futures=True)


class ParsePool:
    """Pages handed over in request order (`submit`), records given back in the same order
    (`ready`, `drain`) as (request, record).

    Until the workers have given back their first batch (while they start), a batch beyond the
    `BUSY` per worker they hold is parsed by the run's process itself, instead of waiting for
    them. From then on every batch goes to them, and the run's process waits for the oldest when
    they hold `BUSY` each (its CPU is theirs: parsing here too was slower, measured on the clips).
    Records come back in request order either way, and an error in order too: the first bad
    page's."""

    def __init__(self, source: str, cfg: dict, registry, workers: int):
        self.source, self.workers = source, workers
        self._spec, self._cfg, self._registry = source_spec(source, cfg), cfg, registry
        # the registry reaches the workers through a file: as an argument of their start it would be
        # written down a pipe the starting worker reads only once its imports are done, holding the
        # run's process for each worker's start-up
        self._folder = tempfile.mkdtemp(prefix="talent-index-parse-")
        registry_file = os.path.join(self._folder, "registry.pickle")
        with open(registry_file, "wb") as fh:
            pickle.dump(registry, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._setup: _Setup = (source, cfg, registry_file)
        started = _STARTED.get(workers)
        self._own = started is None  # workers of its own, stopped when the round ends
        self._pool = _executor(workers) if started is None else started
        self._batch: list[tuple[Request, bytes]] = []
        self._sent: deque[tuple[list[Request], _Parsed]] = deque()
        self.parsed_here = 0  # pages of the round's batches parsed in the run's process
        self._warm = False  # a worker has given back a batch of this round
        self._held = 0  # batches in `_sent` that went to the workers

    def submit(self, req: Request, body: bytes) -> None:
        self._batch.append((req, body))
        if len(self._batch) >= BATCH:
            self._send()

    def _send(self) -> None:
        if not self._batch:
            return
        reqs = [r for r, _ in self._batch]
        self._warm = self._warm or any(isinstance(f, Future) and f.done() for _, f in self._sent)
        parsed: _Parsed
        if not self._warm and self._held >= BUSY * self.workers:  # the workers are starting: parsed here
            try:
                parsed = _parse_pages(self._spec, self._cfg, self._registry, self._batch)
            except (FetchError, SourceError) as exc:  # raised in its turn, after the batches before it
                parsed = exc
            self.parsed_here += len(reqs)
        else:
            try:
                parsed = self._pool.submit(_parse_batch, self._setup, self._batch)
            except BrokenProcessPool as exc:  # a started worker that ended before this round
                raise self._broken(reqs, exc) from None
            self._held += 1
        self._sent.append((reqs, parsed))
        self._batch = []

    def _collect(self) -> Iterator[tuple[Request, object]]:
        reqs, parsed = self._sent.popleft()
        if isinstance(parsed, PipelineError):
            raise parsed
        if isinstance(parsed, Future):
            self._held -= 1
            try:
                parsed = parsed.result()
            except BrokenProcessPool as exc:
                raise self._broken(reqs, exc) from None
            self._warm = True
        yield from zip(reqs, parsed, strict=True)

    def _broken(self, reqs: list[Request], exc: BrokenProcessPool) -> PipelineError:
        if not self._own:  # stopped with this round; a later round starts workers of its own
            _STARTED.pop(self.workers, None)
            self._own = True
        return PipelineError(
            f"[source {self.source}] a worker process parsing its pages ({reqs[0].url} ... {reqs[-1].url}) "
            f"ended abruptly ({exc}); set {WORKERS_ENV}=0 to parse in the run's own process"
        )

    def ready(self) -> Iterator[tuple[Request, object]]:
        """Records of the oldest batches that are parsed; waiting for the oldest when the workers
        hold more than `BUSY` batches each, or `MAX_QUEUED` batches are out."""
        while self._sent:
            oldest = self._sent[0][1]
            waiting = isinstance(oldest, Future) and not oldest.done()
            if waiting and self._held <= BUSY * self.workers and len(self._sent) <= MAX_QUEUED:
                return
            yield from self._collect()

    def drain(self) -> Iterator[tuple[Request, object]]:
        """Every record not yet given back, in request order."""
        self._send()
        while self._sent:
            yield from self._collect()

    def close(self) -> None:
        try:
            if self._own:
                self._pool.shutdown(wait=True, cancel_futures=True)
            else:  # started workers outlive the round: only what it sent and has not collected goes
                futures = [f for _, f in self._sent if isinstance(f, Future)]
                for future in futures:
                    future.cancel()
                wait(futures)
                self._sent.clear()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
