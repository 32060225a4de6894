"""Content-addressed raw storage, immutable snapshots, atomic writes."""

import json
import os

import pandas as pd
import pytest

from tasks.errors import StorageError
from tasks.storage import (RawRecord, atomic_write_bytes, latest_snapshot, list_snapshots, read_snapshot,
                           refresh_lock, store_raw, write_snapshot)


def _rec(url="https://example.org/a"):
    return RawRecord(source="numbeo", url=url, final_url=url, status=200, headers={}, fetched_at="2026-01-01T00:00:00+00:00",
                     sha256="", size=0, user_agent="ua", parser_version="1", mode="online")


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
    assert latest_snapshot("numbeo")["snapshot_id"] in {s1["snapshot_id"], s3["snapshot_id"]}
    assert not [p for p in (data_home / "snapshots").rglob(".*") if p.name.endswith(".tmp")]


def test_damaged_snapshot_is_detected(data_home):
    df = pd.DataFrame({"city_id": ["a"], "value": [1.0]})
    info = write_snapshot("hurun", "2020", df, {})
    with open(info["path"], "r+b") as fh:
        fh.seek(10)
        fh.write(b"XX")
    with pytest.raises(StorageError, match="damaged"):
        read_snapshot(info)


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
    with refresh_lock():
        with pytest.raises(StorageError, match="another refresh is running"):
            with refresh_lock():
                pass
    with refresh_lock():  # released afterwards
        pass


def test_provenance_records_inputs(data_home):
    info = write_snapshot("curated", "2020", pd.DataFrame({"v": [1]}), {"inputs": [{"url": "file:x"}]})
    saved = json.loads((data_home / "snapshots" / "curated" / "2020" / info["snapshot_id"] / "provenance.json").read_text())
    assert saved["inputs"] == [{"url": "file:x"}] and saved["validated"] is True
