"""What every source module shares: the request plan item, HTML loading and value parsing."""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from bs4 import BeautifulSoup
from lxml import etree, html

from tasks.errors import SourceError
from tasks.registry.cities import Listed
from tasks.settings import sources_path
from tasks.sources.schema import SourceSettings

if TYPE_CHECKING:
    from tasks.registry.build import BuildContext, NewCity

TIDY_COLUMNS = ["city_id", "indicator", "value", "unit", "edition", "name_in_source", "location"]
# Optional in a tidy table: how good each value is (real | proxy | illustrative; a source that does not
# say is real), what a proxy stands in for and how it was transformed. Carried into the snapshot, the
# coverage table and the release.
STATUS_COLUMNS = ["status", "stands_for", "transform"]

BLOCK_MARKERS = (
    "captcha",
    "cf-challenge",
    "challenge-platform",
    "just a moment",
    "access denied",
    "are you a robot",
    "unusual traffic",
    "please enable javascript and cookies",
    "attention required",
    "request blocked",
    "too many requests",
)


@dataclass(frozen=True)
class Request:
    """One response a source needs: where to get it and how to parse it."""

    kind: str  # parser kind, e.g. "numbeo-rankings"
    url: str
    city_id: str | None = None
    meta: dict = field(default_factory=dict, hash=False, compare=False)


MAX_UNPACKED_BYTES = 100 * 1024 * 1024  # a workbook's members, uncompressed
MAX_SHEET_CELLS = 5_000_000
MAX_SHEET_ROWS = 200_000  # far above any list we read (GaWC: ~700 cities; a Hurun export: ~1,600 rows)


def _count_sheet(fh, limit_rows: int, limit_cells: int) -> tuple[int, int]:
    """Rows and cells of a sheet's XML, counted on the stream, stopping once past a limit."""
    rows = cells = 0
    tail = b""
    while chunk := fh.read(1 << 20):
        data = tail + chunk
        rows += len(re.findall(rb"<row[\s>/]", data))
        cells += len(re.findall(rb"<c[\s>/]", data))
        tail = data[-8:]  # a tag cut between chunks is counted in the next one...
        rows -= len(re.findall(rb"<row[\s>/]", tail))  # ...so not here
        cells -= len(re.findall(rb"<c[\s>/]", tail))
        if rows > limit_rows or cells > limit_cells:
            break
    return rows + len(re.findall(rb"<row[\s>/]", tail)), cells + len(re.findall(rb"<c[\s>/]", tail))


def check_workbook(body: bytes, source: str, location: str, max_unpacked: int = MAX_UNPACKED_BYTES) -> None:
    """Refuse an xlsx that would unpack to more than `max_unpacked` bytes, or whose sheets claim or
    hold more than MAX_SHEET_CELLS cells or MAX_SHEET_ROWS rows, before any reader expands it (a
    small file can hold a huge sheet; a sheet without a <dimension> claims nothing, so its rows and
    cells are counted on the stream)."""

    try:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            members = z.infolist()
            unpacked = sum(m.file_size for m in members)
            if unpacked > max_unpacked:
                raise SourceError(
                    source,
                    f"the workbook unpacks to {unpacked:,} bytes ({len(body):,} packed), more than the "
                    f"{max_unpacked:,} bytes we read",
                    location=location,
                )
            for m in members:
                if m.filename.startswith("xl/worksheets/") and m.filename.endswith(".xml"):
                    with z.open(m) as fh:
                        head = fh.read(4096).decode("utf-8", "replace")
                    dim = re.search(r'<dimension ref="[A-Z]+\d+:([A-Z]+)(\d+)"', head)
                    if dim:
                        cols = sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(dim.group(1))))
                        if cols * int(dim.group(2)) > MAX_SHEET_CELLS:
                            raise SourceError(
                                source,
                                f"the sheet {m.filename} claims {int(dim.group(2)):,} rows x {cols} columns, more "
                                f"than the {MAX_SHEET_CELLS:,} cells we read",
                                location=location,
                            )
                    with z.open(m) as fh:
                        rows, cells = _count_sheet(fh, MAX_SHEET_ROWS, MAX_SHEET_CELLS)
                    if rows > MAX_SHEET_ROWS or cells > MAX_SHEET_CELLS:
                        raise SourceError(
                            source,
                            f"the sheet {m.filename} holds more than {min(rows, MAX_SHEET_ROWS + 1) - 1:,} rows or "
                            f"{min(cells, MAX_SHEET_CELLS + 1) - 1:,} cells (counted, not claimed): at most "
                            f"{MAX_SHEET_ROWS:,} rows and {MAX_SHEET_CELLS:,} cells are read",
                            location=location,
                        )
    except zipfile.BadZipFile as exc:
        raise SourceError(
            source, f"expected an xlsx workbook, found a damaged zip ({exc})", location=location
        ) from None


def read_sheet(body: bytes, source: str, location: str, expected: str) -> pd.DataFrame:
    """An XLSX workbook (checked by `check_workbook` first) or a CSV table as strings, no header row
    assumed; a reader failure is a SourceError saying what was `expected` ("an xlsx or CSV sheet")."""
    try:
        if body[:2] == b"PK":
            check_workbook(body, source, location)
            return pd.read_excel(io.BytesIO(body), header=None, dtype=str).fillna("")
        return pd.read_csv(io.BytesIO(body), header=None, dtype=str, keep_default_na=False)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a layout problem for the user
        raise SourceError(source, f"expected {expected}, could not read it: {exc}", location=location) from None


def snake(header: str) -> str:
    """'Cost of Living Plus Rent Index' -> 'cost_of_living_plus_rent_index'."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", header.strip()).strip("_").lower()
    return re.sub(r"_+", "_", s)


_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?$")


def parse_number(
    text: str | None, *, source: str, location: str, city: str | None = None, field_name: str | None = None
) -> float:
    """'1,234.56' -> 1234.56; '?', '-', '' -> NaN; anything else is an error naming where it was."""
    if text is None:
        return np.nan
    t = text.replace("\xa0", " ").strip().replace(",", "")
    if t in ("", "?", "-", "—", "–", "n/a", "N/A"):
        return np.nan
    if not _NUMBER.match(t):
        raise SourceError(
            source, f"expected a number, found {text.strip()!r}", location=location, city=city, field=field_name
        )
    return float(t)


_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)


def decode(body: bytes, source: str, location: str, declared: str | None = None) -> str:
    """Decode a response body; a wrong encoding is a clear error, never silent mojibake.

    UTF-8 first; otherwise the charset the page (or header) declares; otherwise an error."""
    if b"\x00" in body[:4096]:
        raise SourceError(
            source,
            "response is not text in a single-byte or UTF-8 encoding (NUL bytes: UTF-16 or binary?)",
            location=location,
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_error = exc
    m = _CHARSET.search(body[:4096])
    charset = declared or (m.group(1).decode("ascii") if m else None)
    if not charset or charset.lower().replace("-", "") == "utf8":
        raise SourceError(
            source,
            f"response is not valid UTF-8 and declares no other charset "
            f"({first_error.reason} at byte {first_error.start})",
            location=location,
        )
    try:
        return body.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise SourceError(
            source, f"response does not decode as its declared charset {charset!r}: {exc}", location=location
        ) from exc


def soup(body: bytes, source: str, location: str) -> BeautifulSoup:
    # lxml's HTML parser does not resolve external entities or fetch DTDs.
    return BeautifulSoup(decode(body, source, location), "lxml")


def html_tree(body: bytes, source: str, location: str):
    """The page as an lxml tree: the same libxml2 parse BeautifulSoup's lxml builder makes, without
    building Python objects for every node (much faster on the hot pages: Numbeo prices and
    rankings, the Hurun list). Parsers fall back to `soup` only to explain a page they did not expect."""

    text = decode(body, source, location)
    # a parser per call: lxml parsers must not be shared between threads
    parser = html.HTMLParser(encoding="utf-8")
    try:
        return html.document_fromstring(text.encode("utf-8"), parser=parser)
    except etree.ParserError:  # an empty page: the parser then says what it expected to find
        return html.document_fromstring(b"<html></html>", parser=parser)


def has_class(name: str) -> str:
    """XPath predicate: the element's class attribute lists `name` (as BeautifulSoup's class_= does)."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_NOT_TEXT = {"script", "style", "template"}


def node_text(el) -> str:
    """Like BeautifulSoup's get_text(" ", strip=True): the stripped strings, comments, scripts and
    styles left out, joined by one space."""
    if el is None:
        return ""
    if len(el) == 0:
        return (el.text or "").strip()
    parts: list[str] = []

    def walk(e):
        if e.text:
            parts.append(e.text)
        for c in e:
            if isinstance(c.tag, str) and c.tag not in _NOT_TEXT:
                walk(c)
            if c.tail:
                parts.append(c.tail)

    walk(el)
    return " ".join(t for t in (p.strip() for p in parts) if t)


# tags whose strings BeautifulSoup's `stripped_strings` leaves out (they are not plain NavigableStrings)
_NOT_PLAIN_STRINGS = {"script", "style", "template", "rt", "rp"}


def stripped_strings(el) -> Iterator[str]:
    """BeautifulSoup's `doc.stripped_strings` (once scripts and styles are removed) on an lxml tree:
    every text in document order, stripped, the empty ones, comments and the strings of scripts,
    styles, templates and ruby annotations left out."""
    todo: list = [el]
    while todo:
        e = todo.pop()
        if isinstance(e, str):  # a tail, queued after its element's subtree
            text = e.strip()
            if text:
                yield text
            continue
        if e.text:
            text = e.text.strip()
            if text:
                yield text
        for c in reversed(e):
            if c.tail:
                todo.append(c.tail)
            if isinstance(c.tag, str) and c.tag not in _NOT_PLAIN_STRINGS:
                todo.append(c)


def check_not_blocked(doc: BeautifulSoup, source: str, location: str, expected: str) -> None:
    """Raise if the page is a block or challenge page served with status 200."""
    text = (doc.title.get_text(" ", strip=True) if doc.title else "") + " " + doc.get_text(" ", strip=True)[:4000]
    low = text.lower()
    hit = next((m for m in BLOCK_MARKERS if m in low), None)
    if hit:
        title = doc.title.get_text(strip=True) if doc.title else "(no title)"
        raise SourceError(
            source,
            f"expected {expected}, found a block or challenge page (title {title!r}, marker {hit!r})",
            location=location,
        )


# ----------------------------------------------------------------------------- the source interface
@dataclass(frozen=True)
class SuiteSpec:
    """One GX suite a source's tables must pass (`expectations/<suite>.json`)."""

    suite: str
    table: str = "main"  # "main": the tidy table, one row per registry city; else an extra table
    key_column: str | None = "city_id"  # the column that names offending rows


@dataclass(frozen=True)
class VintagePolicy:
    """What a source's edition policy expects for an index edition: `equal` (found == expected) or
    `at_most` (found is a year <= expected)."""

    expected: str
    rule: str = "equal"
    note: str = ""

    def matches(self, found: str | None) -> bool:
        if found is None:
            return False
        if self.rule == "at_most":
            try:
                return int(str(found)[:4]) <= int(self.expected)
            except ValueError:
                return False
        return str(found) == str(self.expected)

    def describe(self) -> str:
        return f"<= {self.expected}" if self.rule == "at_most" else str(self.expected)


@dataclass(frozen=True)
class ReleaseTable:
    """A table a source adds to each release built on its snapshot: a CSV file of the release, shown
    in the report under `title` (`headings`: column -> heading; default the column)."""

    file: str
    title: str
    table: pd.DataFrame
    headings: dict[str, str] = field(default_factory=dict)


class Source:
    """What a source module declares: subclass this in `tasks/sources/<name>.py` and expose an
    instance as `SPEC`. Everything else (ingest, flows, CLI, sample status) derives from it.

    Adding a source = that module + an entry in data/sources.yaml (which may name the module with
    `module:`) + its suites + recordings."""

    name: str = ""
    parser_version: str = "1"
    suites: tuple[SuiteSpec, ...] = ()
    parse_kinds: dict[str, str] = {}  # CLI `parse` kinds -> what they read
    sample_fields: dict[str, list[str]] = {}  # indicator -> fields of data/sample/values.csv behind it
    feeds_indicators: bool = True  # False: city metadata only (no index indicator)
    parallel: bool = False  # True: `work_units` may run on a Dask cluster
    # False: its per-city pages parse faster in the run's process than they travel to a worker and
    # back, however many (tasks/ingest/parse_pool.py); a large single page is still parsed apart
    city_pages_in_workers: bool = True
    suites_dir: Path | None = None  # where its suites live (default: expectations/)
    required: dict[str, str] = {}  # configuration keys it cannot run without -> what they hold
    # How it prints city names: the registry column of its spellings (matched by `Registry.match`),
    # every registry column it reads, and whether its spelling names a new city in `cities build`.
    name_column: str = ""
    registry_columns: tuple[str, ...] = ()
    names_the_city: bool = False

    # The model of its settings in data/sources.yaml: a subclass of `OwnSettings` declaring its own
    # keys (unknown keys are then errors), else only the keys every source has are checked.
    settings_model: type[SourceSettings] = SourceSettings

    # --- city names
    def check_registry(self, registry) -> None:
        """Refuse a registry without the columns this source reads, before any request."""
        registry.require(self.registry_columns, f"source {self.name}")

    def city_list(self, body: bytes, location: str) -> list[Listed]:
        """Every city the source's own list prints, in its order (`talent-index cities build`)."""
        raise NotImplementedError(f"source {self.name} prints no city list")

    def city_list_body(self, bodies: list[bytes], location: str) -> bytes:
        """The one body `city_list` reads from the saved files of the list (one file, unless the
        source serves its list in pages)."""
        if len(bodies) != 1:
            raise SourceError(self.name, f"its city list is one file; got {len(bodies)}", location=location)
        return bodies[0]

    def registry_cells(self, cities: list[NewCity], ctx: BuildContext) -> None:
        """Fill this source's registry columns of the cities `cities build` adds: by default every
        spelling it listed for the city, `;`-separated, in `name_column`."""
        for c in cities:
            items = c.place.listed.get(self.name) or []
            c.cells[self.name_column] = ";".join(dict.fromkeys(i.printed for i in items))

    # --- editions
    def edition_config(self, cfg: dict, edition: str, cadence: str) -> tuple[dict, VintagePolicy]:
        """The configuration of this source for index edition `edition` (URLs filled in) and the
        vintage its policy expects. Raise EditionError when the policy has nothing for it."""
        return cfg, VintagePolicy(edition)

    def found_vintage(self, cfg: dict, parsed: dict) -> str | None:
        """The vintage the fetched data itself states (page title, file tag...). A source whose data
        states none is taken to be what its configuration says it fetched (override this whenever
        the data can say it)."""
        return str((cfg.get("vintage_policy") or {}).get("expected", cfg.get("edition")))

    def vintage_notes(self, cfg: dict, parsed: dict) -> list[str]:
        """What a reader must know about the vintage beyond expected and found (e.g. a table of an
        older edition used because the edition has none): kept in the ingest log, the manifest and
        the report."""
        return []

    def fallback_values(self, cfg: dict, parsed: dict) -> list[dict]:
        """Values older than the edition's policy wants that the data still holds (rows carried
        forward from an older edition's table, a country figure older than the policy's limit):
        published, and listed in the release as vintage fallbacks. Each group: `{"reason",
        "vintage", "edition_used", "values": ["city:indicator", ...]}`."""
        return []

    def missing_file_hint(self, cfg: dict) -> str:
        """How to make a local file the configuration names but that does not exist (preflight)."""
        return ""

    def discover(self, cfg: dict, fetch) -> pd.DataFrame:
        """What the source offers that the configuration may not know yet (`talent-index sources
        discover`); `fetch(url) -> bytes` gets a page through the polite fetcher."""
        raise NotImplementedError(f"source {self.name} has nothing to discover")

    def discover_url(self, cfg: dict) -> str:
        """The page `discover` reads (a saved copy of it can be given instead)."""
        raise NotImplementedError(f"source {self.name} has nothing to discover")

    # --- fetch and parse
    def plan(self, cfg: dict, registry, done: dict) -> list[Request]:
        raise NotImplementedError

    def parse(self, req: Request, body: bytes, registry, cfg: dict | None = None):
        raise NotImplementedError

    def parse_file(self, kind: str, body: bytes, location: str, registry):
        """The CLI's `parse KIND FILE`: one parser on a saved response, as a DataFrame."""
        return self.parse(Request(kind, location), body, registry, {})

    def parse_file_notes(self, kind: str, table, registry) -> list[str]:
        """Lines the CLI's `parse` prints on stderr beside the table (e.g. counts per index city)."""
        return []

    def parse_context(self):

        return contextlib.nullcontext()

    def pages_per_city(self, cfg: dict) -> bool:
        """Whether its plan, with this configuration, asks for a page per registry city that the
        ingest's worker processes would parse (`city_pages_in_workers`): a refresh then starts
        those workers before its first source (tasks/ingest/parse_pool.py)."""
        return False

    # --- parallel work (e.g. one task per night-light tile)
    def work_units(self, cfg: dict, registry, parsed: dict) -> list[dict]:
        return []

    def run_work_unit(self, unit: dict) -> list[dict]:
        raise NotImplementedError

    def combine_work_units(self, cfg: dict, registry, parsed: dict, results: list[dict]) -> dict:
        return parsed

    # --- tidy
    def prepare(self, cfg: dict, registry, parsed: dict) -> dict:
        """Parsed responses turned into what `tidy` and `extras` read (runs the work units in
        process when there are any)."""
        units = self.work_units(cfg, registry, parsed)
        if not units:
            return parsed
        return self.combine_work_units(cfg, registry, parsed, [r for u in units for r in self.run_work_unit(u)])

    def tidy(self, cfg: dict, registry, parsed: dict) -> pd.DataFrame:
        raise NotImplementedError

    def extras(self, cfg: dict, registry, parsed: dict, raw_parsed: dict) -> dict[str, pd.DataFrame]:
        """Tables kept in the snapshot beside the tidy table (`raw_parsed`: before `prepare`)."""
        return {}

    # --- validation
    def suites_for(self, cfg: dict) -> tuple[SuiteSpec, ...]:
        """The suites of this configuration (an edition may lack a table, e.g. GaWC connectivity)."""
        return self.suites

    def suite_params(self, cfg: dict, registry) -> dict:
        return {}

    def extra_checks(self, spec: SuiteSpec, cfg: dict, registry, tidy: pd.DataFrame, extras: dict, previous) -> list:
        """Checks GX does not express, added to the report of `spec` (`previous`: the previous
        snapshot, a `PreviousSnapshot` or None)."""
        return []

    def summary_markdown(self, extras: dict) -> str | None:
        """What a data engineer should see beside the data-quality summary (run artifacts)."""
        return None

    # --- what it adds to a release
    def release_tables(self, snapshot: pd.DataFrame) -> list[ReleaseTable]:
        """Tables this source adds to every release built on its snapshot (`snapshot`: its table)."""
        return []

    def release_notes(self, coverage: pd.DataFrame) -> list[str]:
        """What a reader must know about this source's values in a release (`coverage`: the
        release's coverage rows of this source), shown in the report beside the coverage table."""
        return []


CONFIG_FILE = "data/sources.yaml"  # what a source names as its configuration; the file in use replaces it


class EditionError(SourceError):
    """A source's edition policy has nothing for the edition asked for (or its configuration is
    not what the policy needs). Named after the configuration file actually in use
    (TALENT_INDEX_SOURCES), not the default one."""

    def __init__(self, source: str, message: str, *, location: str | None = CONFIG_FILE, **kwargs):
        if location == CONFIG_FILE:
            location = str(sources_path())
        super().__init__(source, message, location=location, **kwargs)
