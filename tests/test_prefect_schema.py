"""The tests' Prefect servers start on a database restored from tests/fixtures/prefect/sqlite-schema.sql
(tests/prefect_server.py). It must be at the head of the installed Prefect's SQLite migrations: after
an upgrade of Prefect, this fails until `.venv/bin/python scripts/prefect_test_schema.py` writes it
again (Prefect would still migrate it when a server starts, at that cost in every session)."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from pathlib import Path

from tests.prefect_server import SCHEMA, restore_schema


def sqlite_head_revision() -> str:
    """The one revision of Prefect's SQLite migrations that no other revises (read, not imported)."""
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin
    folder = Path(spec.origin).parent / "server" / "database" / "_migrations" / "versions" / "sqlite"
    revisions, revised = set(), set()
    for script in folder.glob("*.py"):
        text = script.read_text()
        revision = re.search(r'^revision\s*=\s*"(\w+)"', text, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        assert revision and down, f"{script.name}: no revision or down_revision"
        revisions.add(revision.group(1))
        revised.update(re.findall(r'"(\w+)"', down.group(1)))
    heads = revisions - revised
    assert len(revisions) > 100 and len(heads) == 1, (len(revisions), heads)
    return heads.pop()


def test_the_schema_file_is_at_the_head_of_prefects_migrations(tmp_path):
    head = sqlite_head_revision()
    assert f"at Alembic revision {head}," in SCHEMA.read_text().splitlines()[0]
    con = sqlite3.connect(restore_schema(tmp_path / "prefect.db"))
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    assert {"flow", "flow_run", "task_run", "deployment", "automation", "artifact"} <= tables
