"""What every source module shares: the request plan item, HTML loading and value parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from bs4 import BeautifulSoup

from ..errors import SourceError

TIDY_COLUMNS = ["city_id", "indicator", "value", "unit", "edition", "name_in_source", "location"]

BLOCK_MARKERS = (
    "captcha", "cf-challenge", "challenge-platform", "just a moment", "access denied",
    "are you a robot", "unusual traffic", "please enable javascript and cookies", "attention required",
    "request blocked", "too many requests",
)


@dataclass(frozen=True)
class Request:
    """One response a source needs: where to get it and how to parse it."""

    kind: str                 # parser kind, e.g. "numbeo-rankings"
    url: str
    city_id: str | None = None
    meta: dict = field(default_factory=dict, hash=False, compare=False)


def snake(header: str) -> str:
    """'Cost of Living Plus Rent Index' -> 'cost_of_living_plus_rent_index'."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", header.strip()).strip("_").lower()
    return re.sub(r"_+", "_", s)


_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?$")


def parse_number(text: str | None, *, source: str, location: str, city: str | None = None,
                 field_name: str | None = None) -> float:
    """'1,234.56' -> 1234.56; '?', '-', '' -> NaN; anything else is an error naming where it was."""
    if text is None:
        return np.nan
    t = text.replace("\xa0", " ").strip().replace(",", "")
    if t in ("", "?", "-", "—", "–", "n/a", "N/A"):
        return np.nan
    if not _NUMBER.match(t):
        raise SourceError(source, f"expected a number, found {text.strip()!r}", location=location,
                          city=city, field=field_name)
    return float(t)


_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)


def decode(body: bytes, source: str, location: str, declared: str | None = None) -> str:
    """Decode a response body; a wrong encoding is a clear error, never silent mojibake.

    UTF-8 first; otherwise the charset the page (or header) declares; otherwise an error."""
    if b"\x00" in body[:4096]:
        raise SourceError(source, "response is not text in a single-byte or UTF-8 encoding (NUL bytes: "
                                  "UTF-16 or binary?)", location=location)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_error = exc
    m = _CHARSET.search(body[:4096])
    charset = declared or (m.group(1).decode("ascii") if m else None)
    if not charset or charset.lower().replace("-", "") == "utf8":
        raise SourceError(source, f"response is not valid UTF-8 and declares no other charset "
                                  f"({first_error.reason} at byte {first_error.start})", location=location)
    try:
        return body.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise SourceError(source, f"response does not decode as its declared charset {charset!r}: {exc}",
                          location=location) from exc


def soup(body: bytes, source: str, location: str) -> BeautifulSoup:
    # lxml's HTML parser does not resolve external entities or fetch DTDs.
    return BeautifulSoup(decode(body, source, location), "lxml")


def html_tree(body: bytes, source: str, location: str):
    """The page as an lxml tree: the same libxml2 parse BeautifulSoup's lxml builder makes, without
    building Python objects for every node (about 10x faster on the hot pages: Numbeo prices and
    rankings, the Hurun list). Parsers fall back to `soup` only to explain a page they did not expect."""
    from lxml import etree, html

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


def check_not_blocked(doc: BeautifulSoup, source: str, location: str, expected: str) -> None:
    """Raise if the page is a block or challenge page served with status 200."""
    text = (doc.title.get_text(" ", strip=True) if doc.title else "") + " " + doc.get_text(" ", strip=True)[:4000]
    low = text.lower()
    hit = next((m for m in BLOCK_MARKERS if m in low), None)
    if hit:
        title = doc.title.get_text(strip=True) if doc.title else "(no title)"
        raise SourceError(source, f"expected {expected}, found a block or challenge page "
                                  f"(title {title!r}, marker {hit!r})", location=location)


def cell_text(cell) -> str:
    return cell.get_text(" ", strip=True) if cell is not None else ""
