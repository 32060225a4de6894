"""Secrets stay secret; ids cannot become paths; untrusted files are parsed safely."""

import io
import json
import zipfile

import pytest
from typer.testing import CliRunner

from tasks.errors import SourceError
from tasks.secrets import redact


def test_redact_scrubs_env_secrets_url_credentials_and_query_keys(monkeypatch):
    monkeypatch.setenv("TALENT_INDEX_WEBHOOK_URL", "https://hooks.example.org/T000/B000/XXXXSECRET")
    monkeypatch.setenv("NUMBEO_API_KEY", "k-123456789")
    text = (
        "posting to https://hooks.example.org/T000/B000/XXXXSECRET failed; "
        "GET https://www.numbeo.com/api/indices?api_key=k-123456789&query=Paris; "
        "db postgresql://admin:hunter2@127.0.0.1/prefect; other ?token=abcdef"
    )
    out = redact(text)
    for secret in ("XXXXSECRET", "k-123456789", "hunter2", "abcdef"):
        assert secret not in out
    assert "api_key=***" in out and "postgresql://***@127.0.0.1" in out


def test_cli_errors_are_redacted(monkeypatch, tmp_path):
    from talent_index.cli import app

    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-abcdefgh")
    missing = tmp_path / "tok-abcdefgh.html"
    res = CliRunner().invoke(app, ["parse", "numbeo-rankings", str(missing)])
    assert res.exit_code == 1 and "tok-abcdefgh" not in res.output and "***" in res.output


def test_api_key_never_reaches_disk(monkeypatch, tmp_path, data_home, registry):
    """API mode end to end (recorded JSON): the key is in the environment only."""
    from tasks.ingest.core import ingest
    from tasks.sources import load_sources_config
    from tests.sources.test_numbeo_api import _api_recordings

    monkeypatch.setenv("NUMBEO_API_KEY", "zz-secret-key-42")
    cfg = load_sources_config(cadence="quarterly")["numbeo"]  # the API serves current figures
    cfg = {**cfg, "api": {**cfg["api"], "enabled": True}}
    rec = _api_recordings(tmp_path, registry, cfg)
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    result = ingest("numbeo", cfg, "offline", registry)
    assert result.snapshot["rows"] == 240
    for p in data_home.rglob("*"):
        if p.is_file():
            assert b"zz-secret-key-42" not in p.read_bytes(), p


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "", "x" * 200, "a b"])
def test_ids_are_validated_before_they_become_paths(bad):
    from tasks.settings import safe_id

    with pytest.raises(ValueError, match="invalid city id"):
        safe_id(bad, "city id")


def test_registry_with_a_path_in_a_city_id_is_refused(tmp_path):
    from tasks.registry.cities import load_registry

    src = (__import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "cities.csv").read_text()
    bad = tmp_path / "cities.csv"
    bad.write_text(src.replace("\nvienna,", "\n../vienna,", 1))
    with pytest.raises(ValueError, match="invalid city id '../vienna'"):
        load_registry(bad)


def test_release_id_cannot_traverse(data_home):
    from tasks.store.releases import release_path

    with pytest.raises(ValueError, match="invalid release id"):
        release_path("../../etc")


def test_xlsx_with_an_external_entity_is_refused():
    from tasks.sources.gawc import parse_connectivity

    src = (
        __import__("pathlib").Path(__file__).resolve().parents[2] / "data/recordings/2020/gawc/connectivity-2020.xlsx"
    ).read_bytes()
    zin = zipfile.ZipFile(io.BytesIO(src))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # openpyxl writes inline strings
                data = data.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 1)
                assert b"<t>London</t>" in data
                data = data.replace(b"<t>London</t>", b"<t>&xxe;</t>", 1)
            zout.writestr(item, data)
    # the XML parser under the xlsx reader (defusedxml-style: no DTD entities) refuses the sheet
    with pytest.raises(SourceError, match=r"\[source gawc, evil.xlsx\] .*could not read it: undefined entity"):
        parse_connectivity(out.getvalue(), "evil.xlsx")


def test_no_secret_in_the_environment_reaches_a_release(baseline, monkeypatch, tmp_path):
    """A release published while every secret the service reads is set holds none of them, in any
    file (manifest, report, CSVs, Parquet)."""
    import shutil

    from flows.publish import gather_score_publish
    from scoring import load_methodology
    from tasks.registry.cities import load_registry

    secrets = {
        "EARTHDATA_TOKEN": "earth-secret-999",
        "TALENT_INDEX_WEBHOOK_URL": "https://hooks.example.test/secret-hook-777",
        "NUMBEO_API_KEY": "numbeo-secret-555",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    shutil.copytree(baseline, tmp_path / "home")
    monkeypatch.setenv("TALENT_INDEX_HOME", str(tmp_path / "home"))
    m = load_methodology().with_choices(zero_rule="shift")  # another release than the baseline's
    manifest = gather_score_publish(load_registry(), m, edition="2020", analyses=False, today="2026-12-04")
    folder = tmp_path / "home" / "releases" / manifest["release_id"]
    files = [f for f in folder.rglob("*") if f.is_file()]
    assert len(files) > 15 and not manifest["reused"]
    for f in files:
        data = f.read_bytes()
        for value in secrets.values():
            assert value.encode() not in data, f"{value} found in {f}"
    assert json.loads((folder / "manifest.json").read_text())["package_versions"]["prefect"] == "3.9.1"
