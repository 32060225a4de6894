"""What `server up` remembers and refuses, and automations upserted by name (on the session's
temporary Prefect server; the full service is tested in test_service.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from tasks.errors import PipelineError
from tasks.service.ops import _env, database_choice, redact_url
from tasks.settings import PROJECT_ROOT

PG = "postgresql+asyncpg://ti:s3cret-pw@127.0.0.1:5432/prefect"


@pytest.fixture
def service_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TALENT_INDEX_SERVICE_DIR", str(tmp_path / "svc"))
    (tmp_path / "svc").mkdir()
    return tmp_path / "svc"


def remember(service_dir, record):
    (service_dir / "settings.json").write_text(json.dumps({"database": record}))


def test_first_start_is_sqlite_and_a_url_is_recorded_without_its_password(service_dir):
    url, record = database_choice(None, None, False)
    assert url is None and record["kind"] == "sqlite"
    url, record = database_choice(PG, None, True)
    assert url == PG and record["url"] == "postgresql+asyncpg://ti:***@127.0.0.1:5432/prefect"
    assert "s3cret-pw" not in json.dumps(record)


def test_a_forgotten_url_is_refused_and_new_database_allows_it(service_dir):
    _, pg = database_choice(PG, None, True)
    remember(service_dir, pg)
    with pytest.raises(
        PipelineError, match=r"the last `server up` used postgresql\+asyncpg://ti:\*\*\*@.*--new-database"
    ):
        database_choice(None, None, False)  # would start an empty SQLite service
    assert database_choice(PG, None, False)[0] == PG  # the same database again
    assert database_choice(None, None, True)[0] is None


def test_url_file_is_remembered_by_path_and_must_live_outside_the_repository(service_dir, tmp_path):
    f = tmp_path / "db-url"
    f.write_text(PG + "\n")
    url, record = database_choice(None, f, True)
    assert url == PG and record["file"] == str(f.resolve())
    remember(service_dir, record)
    assert database_choice(None, None, False)[0] == PG  # read again from the remembered file
    with pytest.raises(PipelineError, match="inside the repository"):
        database_choice(None, PROJECT_ROOT / "db-url", True)
    with pytest.raises(PipelineError, match=r"cannot read the database URL file .*nope"):
        database_choice(None, tmp_path / "nope", True)


def test_processes_other_than_the_server_never_get_the_credentials(monkeypatch):
    monkeypatch.setenv("TALENT_INDEX_DATABASE_URL", PG)
    monkeypatch.setenv("SOME_OTHER_VAR", f"copy of {PG}")
    monkeypatch.setenv("PASSWORD_ONLY", "s3cret-pw")
    worker = _env("http://127.0.0.1:4200/api", withhold=PG)
    assert not [k for k, v in worker.items() if "s3cret-pw" in v]
    server = _env("http://127.0.0.1:4200/api", PG)
    assert server["PREFECT_API_DATABASE_CONNECTION_URL"] == PG
    assert redact_url(PG) == "postgresql+asyncpg://ti:***@127.0.0.1:5432/prefect"


def test_automations_are_upserted_by_name(prefect_harness, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client

    from tasks.service.alerts import AUTOMATIONS_FILE, apply_automations

    monkeypatch.setenv("TALENT_INDEX_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    doc = yaml.safe_load(AUTOMATIONS_FILE.read_text())
    names = [a["name"] for a in doc["automations"]]
    with get_client(sync_client=True) as client:
        for name in names:  # a clean slate on the shared session server
            for a in client.read_automations_by_name(name):
                client.delete_automation(a.id)
    assert apply_automations("webhook") == dict.fromkeys(names, "created")

    def ids():
        with get_client(sync_client=True) as client:
            return {n: [a.id for a in client.read_automations_by_name(n)] for n in names}

    before = ids()
    assert all(len(v) == 1 for v in before.values())
    assert apply_automations("webhook") == dict.fromkeys(names, "unchanged")  # a restart
    assert ids() == before
    doc["automations"][-1]["trigger"]["within_s"] = 3600
    changed = tmp_path / "automations.yaml"
    changed.write_text(yaml.safe_dump(doc))
    result = apply_automations("webhook", changed)
    assert result == {**dict.fromkeys(names, "unchanged"), names[-1]: "updated"}
    assert ids() == before  # updated in place, same id


def test_an_automation_is_the_same_whatever_order_its_sets_come_in():
    """The server hands a trigger's `expect` back in its own order (a set): seen as the same
    automation, not one to update (which restarted the proactive window at random)."""
    from tasks.service.alerts import _canonical

    ours = {"trigger": {"expect": ["prefect.flow-run.Completed", "prefect.flow-run.Completed with warnings"]}}
    server = {"trigger": {"expect": ["prefect.flow-run.Completed with warnings", "prefect.flow-run.Completed"]}}
    assert _canonical(ours) == _canonical(server)
    assert _canonical({"actions": [{"b": 1}, {"a": 2}]}) == {"actions": [{"b": 1}, {"a": 2}]}  # order of actions kept


def test_a_stopped_process_counts_as_gone_while_it_waits_to_be_reaped(tmp_path):
    """`server down` waits for each process to go; one whose parent has not reaped it yet (a zombie,
    as every orphan is until an init that reaps now and then gets to it) has gone."""
    import subprocess
    import time
    from pathlib import Path

    from tasks.service.ops import _alive

    # `sleep 0.1` becomes a child of the shell, which then becomes `sleep 30` and never reaps it
    parent = subprocess.Popen(["sh", "-c", "sleep 0.1 & exec sleep 30"])
    try:
        deadline = time.time() + 10
        kids: list[int] = []
        while not kids and time.time() < deadline:
            children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
            kids = [int(k) for k in children]
            time.sleep(0.02)
        assert len(kids) == 1
        zombie = kids[0]
        while Path(f"/proc/{zombie}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.time() < deadline, "the child never ended"
            time.sleep(0.02)
        assert _alive(parent.pid) is True  # our own child, running
        assert _alive(zombie) is False  # someone else's child, ended, not reaped yet
    finally:
        parent.kill()
        parent.wait()
    assert _alive(parent.pid) is False
