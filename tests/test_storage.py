"""Content-addressed raw storage, immutable snapshots, atomic writes."""

import json
import os

import pandas as pd
import pytest

from tasks.errors import StorageError
from tasks.store.storage import (
    RawRecord,
    append_ingest,
    atomic_write_bytes,
    latest_snapshot,
    list_snapshots,
    read_ingest_log,
    read_snapshot,
    refresh_lock,
    resolve_stored,
    store_raw,
    write_snapshot,
)


def _rec(url="https://example.org/a"):
    return RawRecord(
        source="numbeo",
        url=url,
        final_url=url,
        status=200,
        headers={},
        fetched_at="2026-01-01T00:00:00+00:00",
        sha256="",
        size=0,
        user_agent="ua",
        parser_version="1",
        mode="online",
    )


def test_identical_bodies_are_stored_once(data_home):
    a = store_raw(_rec(), b"<html>same</html>")
    b = store_raw(_rec(), b"<html>same</html>")
    c = store_raw(_rec(), b"<html>other</html>")
    assert a.path == b.path and b.reused and not a.reused
    objects = list((data_home / "raw" / "numbeo" / "objects").rglob("*"))
    assert len([p for p in objects if p.is_file()]) == 2
    assert c.sha256 != a.sha256


def test_snapshot_is_immutable_and_deduplicated(data_home):
    df = pd.DataFrame({"city_id": ["a", "b"], "indicator": ["x", "x"], "value": [1.0, 2.0]})
    s1 = write_snapshot("numbeo", "2020", df, {"producer": "t"}, extras={"ranking": df.head(1)})
    s2 = write_snapshot("numbeo", "2020", df.copy(), {"producer": "t"}, extras={"ranking": df.head(1)})
    assert s1["snapshot_id"] == s2["snapshot_id"] and s2["reused"]
    assert len(list_snapshots("numbeo")) == 1
    pd.testing.assert_frame_equal(read_snapshot(s1), df)
    pd.testing.assert_frame_equal(read_snapshot(s1, "ranking"), df.head(1))
    df2 = df.assign(value=[1.0, 3.0])
    s3 = write_snapshot("numbeo", "2020", df2, {"producer": "t"})
    assert s3["snapshot_id"] != s1["snapshot_id"]
    assert not [p for p in (data_home / "snapshots").rglob(".*") if p.name.endswith(".tmp")]
    # stored paths are relative to the data home
    assert s1["path"] == f"snapshots/numbeo/2020/{s1['snapshot_id']}/table.parquet"


def test_latest_is_the_last_ingest_even_when_its_content_is_older(data_home):
    """Content A -> B -> A: A's snapshot was written first (and is reused by the third ingest),
    but the third ingest is the latest, so A is what publishing uses."""
    a = pd.DataFrame({"city_id": ["x"], "indicator": ["i"], "value": [1.0]})
    b = a.assign(value=[2.0])
    ids = []
    for table in (a, b, a):
        snap = write_snapshot("numbeo", "2020", table, {})
        append_ingest("numbeo", {"snapshot_id": snap["snapshot_id"], "edition": "2020"})
        ids.append(snap["snapshot_id"])
    assert ids[0] == ids[2] != ids[1]
    latest = latest_snapshot("numbeo", edition="2020")
    assert latest is not None and latest["snapshot_id"] == ids[0]
    assert read_snapshot(latest)["value"].tolist() == [1.0]
    entries, problems = read_ingest_log("numbeo")
    assert [e["snapshot_id"] for e in entries] == ids and problems == []


def test_a_torn_last_line_of_the_ingest_log_is_skipped_and_kept(data_home):
    """A log cut in the middle of a line (a crash of an older writer, a full disk) is read up to the
    torn line, which is named; the next append starts on a new line and keeps every earlier byte."""
    snap = write_snapshot("hurun", "2020", pd.DataFrame({"city_id": ["x"], "value": [1.0]}), {})
    append_ingest("hurun", {"snapshot_id": snap["snapshot_id"], "edition": "2020"})
    log = data_home / "snapshots" / "hurun" / "ingests.jsonl"
    torn = log.read_bytes() + b'{"snapshot_id": "deadbeef", "edi'
    log.write_bytes(torn)
    entries, problems = read_ingest_log("hurun")
    assert [e["snapshot_id"] for e in entries] == [snap["snapshot_id"]]
    assert len(problems) == 1 and "ingests.jsonl line 2" in problems[0]
    latest = latest_snapshot("hurun")
    assert latest is not None and latest["snapshot_id"] == snap["snapshot_id"]
    append_ingest("hurun", {"snapshot_id": snap["snapshot_id"], "edition": "2021"})
    assert log.read_bytes().startswith(torn + b"\n")
    assert [e["edition"] for e in read_ingest_log("hurun")[0]] == ["2020", "2021"]


def test_a_bad_ingest_log_line_is_skipped_and_named_with_how_to_repair_it(data_home):
    """A line naming a snapshot outside the snapshots' folder, or not JSON: the line is skipped (the
    other ingests still count) and named once, with the file, the line and what to do."""
    from tasks.progress import set_reporter

    snap = write_snapshot("hurun", "2020", pd.DataFrame({"city_id": ["x"], "value": [1.0]}), {})
    append_ingest("hurun", {"snapshot_id": snap["snapshot_id"], "edition": "2020"})
    log = data_home / "snapshots" / "hurun" / "ingests.jsonl"
    log.write_bytes(log.read_bytes() + b'{"snapshot_id": "../../etc", "edition": "2020"}\nnot json\n')
    said = []
    set_reporter(lambda m, transient: said.append(m))
    try:
        entries, problems = read_ingest_log("hurun")
        latest = latest_snapshot("hurun", "2020")
        assert latest is not None and latest["snapshot_id"] == snap["snapshot_id"]  # the good line counts
    finally:
        set_reporter(None)
    assert [e["snapshot_id"] for e in entries] == [snap["snapshot_id"]]
    assert problems == [
        f"{log} line 2: skipped (invalid snapshot id '../../etc': use letters, digits, '.', '_' and '-' only); the "
        "snapshots are untouched: delete or correct that line (each line is one ingest as JSON) to silence this",
        f"{log} line 3: skipped (Expecting value: line 1 column 1 (char 0)); the snapshots are untouched: delete or "
        "correct that line (each line is one ingest as JSON) to silence this",
    ]
    assert said == [f"warning: {p}" for p in problems]  # named once, however often the log is read


def test_home_migrate_refuses_a_path_that_holds_no_data_home(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from talent_index.cli import app

    typo = tmp_path / "dta"
    monkeypatch.setenv("TALENT_INDEX_HOME", str(typo))
    res = CliRunner().invoke(app, ["home", "migrate"])
    assert res.exit_code == 1
    assert f"{typo} holds no data home (no snapshots/, no releases/, no FORMAT.json): nothing to migrate" in (
        " ".join(res.output.split())
    )
    assert not typo.exists()


def test_damaged_snapshot_is_detected(data_home):
    df = pd.DataFrame({"city_id": ["a"], "value": [1.0]})
    info = write_snapshot("hurun", "2020", df, {})
    with open(resolve_stored(info["path"]), "r+b") as fh:
        fh.seek(10)
        fh.write(b"XX")
    with pytest.raises(StorageError, match="damaged"):
        read_snapshot(info)
    # the same content ingested again rewrites the damaged snapshot under the same id
    again = write_snapshot("hurun", "2020", df, {})
    assert again["snapshot_id"] == info["snapshot_id"] and not again["reused"]
    assert again["repaired"]["damaged_files"] == ["table.parquet"]
    pd.testing.assert_frame_equal(read_snapshot(again), df)


def test_atomic_write_failure_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StorageError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_ids_are_validated_before_they_become_paths(data_home):
    with pytest.raises(ValueError, match="invalid source name"):
        store_raw(_rec().__class__(**{**_rec().__dict__, "source": "../etc"}), b"x")
    with pytest.raises(ValueError, match="invalid edition"):
        write_snapshot("numbeo", "../../x", pd.DataFrame({"a": [1]}), {})


def test_second_refresh_refuses_while_one_runs(data_home):
    with refresh_lock(), pytest.raises(StorageError, match="another refresh is running"), refresh_lock():
        pass
    with refresh_lock():  # released afterwards
        pass


def test_provenance_records_inputs(data_home):
    info = write_snapshot("curated", "2020", pd.DataFrame({"v": [1]}), {"inputs": [{"url": "file:x"}]})
    saved = json.loads(
        (data_home / "snapshots" / "curated" / "2020" / info["snapshot_id"] / "provenance.json").read_text()
    )
    assert saved["inputs"] == [{"url": "file:x"}] and saved["validated"] is True
