"""Write tests/fixtures/prefect/sqlite-schema.sql: the schema of a new Prefect server database on
SQLite, as the installed Prefect's own migrations leave it (a new database in a temporary folder,
migrated by Prefect, then dumped with SQLite's iterdump).

The tests' session server starts on a database restored from this file instead of migrating a new
one, which costs more CPU than anything else that server does in a session. Prefect still runs its
migrations when it starts: a file left at an older revision is brought up to date (slowly), and a
test fails until the file is written again for the locked Prefect:

    .venv/bin/python scripts/prefect_test_schema.py
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tests" / "fixtures" / "prefect" / "sqlite-schema.sql"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "prefect.db"
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{db_path}"
        os.environ["PREFECT_HOME"] = tmp
        from prefect.server.database import provide_database_interface

        asyncio.run(provide_database_interface().create_db())  # Prefect's migrations, to their head
        con = sqlite3.connect(db_path)
        try:
            (revision,) = con.execute("SELECT version_num FROM alembic_version").fetchone()
            statements = list(con.iterdump())
        finally:
            con.close()
    header = [
        f"-- A new Prefect server database (SQLite) at Alembic revision {revision}, as the migrations of",
        f"-- prefect {version('prefect')} (Apache-2.0) leave it. Written by scripts/prefect_test_schema.py;",
        "-- the tests' session server starts on a database restored from it (tests/prefect_server.py).",
    ]
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text("\n".join(header + statements) + "\n")
    print(f"{TARGET.relative_to(ROOT)}: revision {revision}, {len(statements)} statements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
