"""Flow tests: one offline backfill of both bundled editions through the CLI (test_backfill.py), and
private copies of the baseline home for refreshes of one or two sources (test_refresh.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner


def cli(*args, env: dict | None = None):
    """Run the CLI in-process (under the session's Prefect test server) with extra environment."""
    from talent_index.cli import app

    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def backfilled(prefect_harness, tmp_path_factory):
    """`talent-index backfill --editions 2019,2020` into a fresh data home: (home, cli result)."""
    home = tmp_path_factory.mktemp("backfill") / "home"
    res = cli("backfill", "--editions", "2019,2020", env={"TALENT_INDEX_HOME": str(home)})
    assert res.exit_code == 0, res.output
    return home, res


@pytest.fixture()
def home_copy(prefect_harness, baseline, tmp_path, monkeypatch):
    """A private copy of the baseline home (every source of 2020 ingested, one release), with
    TALENT_INDEX_HOME pointing at it, for tests that refresh a source or two through the CLI."""
    home = tmp_path / "home"
    shutil.copytree(baseline, home, symlinks=True)
    monkeypatch.setenv("TALENT_INDEX_HOME", str(home))
    return home


def latest(home: Path) -> str:
    return (home / "releases" / "LATEST").read_text().strip()
