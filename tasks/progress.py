"""Progress of long steps: the CLI installs a reporter (rich); flows and tasks just call `report`."""

from __future__ import annotations

from collections.abc import Callable

_reporter: Callable[[str, bool], None] | None = None


def set_reporter(fn: Callable[[str, bool], None] | None) -> None:
    global _reporter
    _reporter = fn


_last = {"step": ""}


def report(message: str, transient: bool = False) -> None:
    """A step's progress; `transient` messages (one per request) only update the status line."""
    if not transient:
        _last["step"] = message
    if _reporter is not None:
        _reporter(message, transient)


def last_step() -> str:
    """The last step reported (what an interruption interrupted)."""
    return _last["step"]


def report_transient(message: str) -> None:
    report(message, transient=True)
