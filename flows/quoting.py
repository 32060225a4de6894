"""Prefect's `quote` with the type of what it wraps."""

from __future__ import annotations

from typing import TypeVar, cast

from prefect.utilities.annotations import quote

T = TypeVar("T")


def as_is(value: T) -> T:
    """Pass `value` to a task as it is: Prefect does not walk it looking for futures to resolve (the
    parsed responses, tables and raw lists are large: 20,000 items at 10,000 cities)."""
    return cast(T, quote(value))
