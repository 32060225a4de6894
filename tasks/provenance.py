"""What code made a release: the checkout's commit and the versions of the packages it ran on."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from importlib import metadata

from tasks.settings import PROJECT_ROOT

PACKAGES = ["prefect", "great-expectations", "pandas", "numpy", "pyarrow", "requests", "beautifulsoup4", "lxml"]
PACKAGES += ["rasterio", "scipy", "typer", "pydantic"]


def code_version() -> str:
    try:
        git = ["git", "-C", str(PROJECT_ROOT)]
        sha = subprocess.run(
            [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[p] = metadata.version(p)
    return out
