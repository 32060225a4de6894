"""Errors a user can hit: each says what was expected, what was found, and where."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: an error with a one-line, user-facing message."""


def _rebuilt(cls, args: tuple, kwargs: dict):
    return cls(*args, **kwargs)


class SourceError(PipelineError):
    """A source's response cannot be read as expected (layout changed, block page, bad value)."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        location: str | None = None,
        city: str | None = None,
        field: str | None = None,
    ):
        self.source, self.location, self.city, self.field = source, location, city, field
        self.detail = message
        where = [f"source {source}"]
        if location:
            where.append(str(location))
        if city:
            where.append(f"city {city}")
        if field:
            where.append(f"field {field}")
        super().__init__(f"[{', '.join(where)}] {message}")

    def __reduce__(self):  # pickled from a parsing worker (tasks/ingest/parse_pool.py) with its fields
        return _rebuilt, (
            type(self),
            (self.source, self.detail),
            {"location": self.location, "city": self.city, "field": self.field},
        )


class FetchError(PipelineError):
    """A request could not be completed (after retries where they apply)."""

    def __init__(self, source: str, url: str, message: str):
        self.source, self.url, self.detail = source, url, message
        super().__init__(f"[source {source}, {url}] {message}")

    def __reduce__(self):
        return _rebuilt, (type(self), (self.source, self.url, self.detail), {})


class ReplayMissingError(FetchError):
    """Offline mode was asked for a URL that has no recording."""


class NotPublished(FetchError):
    """The source answered 404 or 410 (online, or as recorded): it publishes nothing at this URL.
    For a request of one city this means the source does not cover the city (its values are
    missing and the methodology's missing-value policy applies); for any other request, an error."""


def with_city(exc: PipelineError, city: str | None) -> PipelineError:
    """The same error, naming the city whose request failed (when it did not already)."""
    if not city:
        return exc
    if isinstance(exc, SourceError) and not exc.city:
        return SourceError(exc.source, exc.detail, location=exc.location, city=city, field=exc.field)
    if isinstance(exc, FetchError) and "(city " not in exc.detail:
        return type(exc)(exc.source, exc.url, f"{exc.detail} (city {city})")
    return exc


class DataQualityError(PipelineError):
    """A validation suite failed with severity `error`: the release is blocked."""

    def __init__(self, source: str, suite: str, failures: list[dict], docs_page: str | None = None):
        self.source, self.suite, self.failures, self.docs_page = source, suite, failures, docs_page
        lines = []
        for f in failures[:5]:
            rows = f.get("offending", [])
            values = f.get("values") or []
            named = [f"{r} ({v})" for r, v in zip(rows, values, strict=False)] if values else [str(r) for r in rows]
            shown = ", ".join(named[:8]) + (" …" if len(named) > 8 else "")
            if shown and f.get("expected"):
                shown += f" (expected {f['expected']})"
            detail = (
                f": offending rows {shown}"
                if shown
                else (f": observed {f['observed']}" if f.get("observed") not in (None, "None") else "")
            )
            lines.append(f"{f['expectation']}({f.get('column') or ''}){detail}")
        more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"[source {source}, suite {suite}] data-quality check failed: " + "; ".join(lines) + more)


class StorageError(PipelineError):
    """A snapshot or release could not be written or read."""


class VintageMismatch(PipelineError):
    """A source's data is not the vintage its edition policy expects for the edition asked for."""
