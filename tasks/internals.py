"""A framework internal this code relies on (a private name, an undocumented behaviour), and how to
check that it still holds.

`tasks.service.prefect_api.INTERNALS` and `tasks.gx_adapter.INTERNALS` list what they use of Prefect
and Great Expectations beyond the documented API; `tests/test_framework_internals.py` runs every
check, so that an upgrade that changes one fails naming it, instead of an investigation.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Internal:
    name: str  # what is relied on, as the framework names it
    why: str  # what for, and why the documented route does not serve
    check: Callable[[], str | None]  # None while it holds; else what changed


def package_file(package: str, relative: str) -> Path:
    """A file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(package)
    return Path(spec.origin).parent / relative


def source_says(package: str, relative: str, *needles: str) -> str | None:
    """None when the package's file holds every one of `needles`; else which it lacks."""
    path = package_file(package, relative)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    lacking = [n for n in needles if n not in text]
    return f"{path} no longer contains {lacking}" if lacking else None
