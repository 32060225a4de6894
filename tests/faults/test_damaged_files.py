"""One damaged file never stops publishing and is never read silently: every read of a release file
is checked against its manifest and names the file; a damaged LATEST is not reused or needed; a
damaged snapshot is rewritten by a re-ingest of the same content."""

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from talent_index.cli import app
from tasks.ingest.core import ingest
from tasks.registry.cities import load_registry
from tasks.sources import load_sources_config
from tasks.store.storage import resolve_stored, sha256_file

from .conftest import assert_nothing_lost

runner = CliRunner()


def latest(h):
    return (h / "releases" / "LATEST").read_text().strip()


def bit_rot(path, at=40):
    data = bytearray(path.read_bytes())
    data[at : at + 4] = b"XXXX"
    path.write_bytes(bytes(data))


def publish(today="2026-12-02", **choices):
    from flows.publish import gather_score_publish
    from scoring import load_methodology

    m, registry = load_methodology().with_choices(**choices) if choices else load_methodology(), load_registry()
    return gather_score_publish(registry, m, edition="2020", analyses=False, today=today)


@pytest.mark.parametrize("damage", ["bit rot", "truncated"])
def test_every_command_that_reads_a_damaged_index_names_the_file(home, damage, tmp_path):
    h, _ = home
    rid = latest(h)
    f = h / "releases" / rid / "index.parquet"
    if damage == "bit rot":
        bit_rot(f)
    else:
        f.write_bytes(f.read_bytes()[:100])
    for args in (["releases", "show"], ["releases", "diff", rid, rid], ["report", "-o", str(tmp_path / "r")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 1, (args, res.output)
        assert f"release {rid} is damaged: index.parquet" in res.output, (args, res.output)
        assert "Traceback" not in res.output
    verify = runner.invoke(app, ["releases", "verify"])
    assert verify.exit_code == 1 and "index.parquet" in verify.output


def test_uncertainty_reads_only_an_intact_indicator_table(home):
    h, _ = home
    bit_rot(h / "releases" / latest(h) / "indicators.parquet")
    res = runner.invoke(app, ["uncertainty", "--draws", "160"])
    assert res.exit_code == 1 and "is damaged: indicators.parquet" in res.output


def test_a_damaged_latest_with_unchanged_inputs_is_published_again_not_reused(home):
    h, _ = home
    damaged = latest(h)
    bit_rot(h / "releases" / damaged / "index.parquet")
    m = publish()
    assert not m["reused"] and m["release_id"] != damaged and latest(h) == m["release_id"]
    assert m["previous_release"] == damaged  # compared with nothing: its diff is skipped, not read
    assert "First release" in (h / "releases" / m["release_id"] / "CHANGES.md").read_text()


def test_a_damaged_latest_does_not_stop_new_data_from_publishing(home):
    h, _ = home
    bit_rot(h / "releases" / latest(h) / "index.parquet")
    m = publish(topsis_normalization="vector")
    assert not m["reused"] and latest(h) == m["release_id"]
    assert [p.name for p in (h / "releases").iterdir() if p.name.startswith(".")] == []  # no temporary folder
    hist = pd.read_parquet(h / "releases" / m["release_id"] / "history.parquet")
    assert set(hist["edition"]) == {"2020"} and set(hist["release_id"]) == {m["release_id"]}


def test_a_truncated_manifest_is_listed_as_damaged_and_blocks_nothing(home):
    h, _ = home
    old = latest(h)
    man = h / "releases" / old / "manifest.json"
    man.write_text(man.read_text()[:200])
    listed = runner.invoke(app, ["releases", "list"])
    assert listed.exit_code == 0 and f"damaged: {old}:" in listed.output and "not valid JSON" in listed.output
    m = publish()
    assert not m["reused"] and latest(h) == m["release_id"]
    listed = runner.invoke(app, ["releases", "list"])
    assert m["release_id"] in listed.output and f"damaged: {old}" in listed.output


def test_a_damaged_snapshot_is_repaired_by_re_ingesting_the_same_content(home):
    h, before = home
    prov = next(h.glob("snapshots/hurun/2020/*/provenance.json"))
    info = json.loads(prov.read_text())
    table = resolve_stored(info["path"])
    bit_rot(table)
    result = ingest("hurun", load_sources_config(edition="2020")["hurun"], "offline", load_registry())
    assert result.snapshot["snapshot_id"] == info["snapshot_id"]
    assert result.snapshot["repaired"]["damaged_files"] == ["table.parquet"]
    assert sha256_file(table) == info["sha256"]
    m = publish()
    assert m["reused"]  # the same inputs as the baseline's release, which is intact


def test_a_release_published_again_after_latest_named_a_deleted_one_is_not_its_own_previous(home):
    h, _ = home
    first = publish(topsis_normalization="vector")
    shutil.rmtree(h / "releases" / first["release_id"])
    again = publish(topsis_normalization="vector")
    assert again["release_id"] == first["release_id"]  # the same id is free again
    assert again["previous_release"] != again["release_id"]
    assert again["previous_release"] == "2020-sample-2026-11-26"  # the baseline's release


def test_report_refuses_to_write_into_a_release_or_snapshot(home):
    h, before = home
    rid = latest(h)
    for target in (h / "releases" / rid / "report", h / "releases" / "other" / "report", h / "snapshots" / "x"):
        res = runner.invoke(app, ["report", "-o", str(target)])
        assert res.exit_code == 1 and "which only publishing and ingesting write" in " ".join(res.output.split()), (
            res.output
        )
    assert_nothing_lost(h, before)
