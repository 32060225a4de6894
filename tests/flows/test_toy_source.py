"""Adding a source touches nothing but its own module, an entry in the sources configuration, its
suite and its recording: a toy source written here is refreshed end to end and scored."""

import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import cli, latest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

MODULE = '''
"""A toy source: a CSV of city,climate lines, supplying the climate index."""
import io
from pathlib import Path

import pandas as pd

from tasks.sources.base import TIDY_COLUMNS, Request, Source, SuiteSpec


class Toy(Source):
    name = "toy"
    suites = (SuiteSpec("toy"),)
    suites_dir = Path(__file__).parent
    parse_kinds = {"toy-csv": "the toy climate list (CSV)"}

    def plan(self, cfg, registry, done):
        return [Request("toy-csv", cfg["url"])]

    def parse(self, req, body, registry, cfg=None):
        return pd.read_csv(io.BytesIO(body))

    def tidy(self, cfg, registry, parsed):
        req, table = next(iter(parsed.items()))
        rows = [(r.city_id, "climate_index", float(r.climate), "index", cfg["edition"], r.city_id, req.url)
                for r in table.itertuples() if r.city_id in registry.ids]
        return pd.DataFrame(rows, columns=TIDY_COLUMNS)


SPEC = Toy()
'''

SUITE = {
    "name": "toy",
    "expectations": [
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "city_id", "value_set": {"$PARAMETER": "registry_city_ids"}},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "climate_index", "min_value": 0, "max_value": 100},
            "severity": "critical",
        },
    ],
}


def test_a_toy_source_is_refreshed_end_to_end_and_scored(home_copy, tmp_path, monkeypatch, registry):
    # 1. the module and its suite, in a folder of their own
    pkg = tmp_path / "toy_pkg"
    pkg.mkdir()
    (pkg / "toy_source.py").write_text(textwrap.dedent(MODULE))
    (pkg / "toy.json").write_text(json.dumps(SUITE))
    monkeypatch.syspath_prepend(str(pkg))
    # 2. an entry in a copy of the sources configuration
    url = "https://toy.example.org/climate.csv"
    config = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    config["toy"] = {"module": "toy_source", "url": url, "http": {"allowed_domains": ["toy.example.org"]}}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    # 3. its recording (edition 2020)
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "data" / "recordings", rec)
    climate = {cid: 40 + i for i, cid in enumerate(registry.ids)}
    (rec / "2020" / "toy").mkdir()
    (rec / "2020" / "toy" / "climate.csv").write_text(
        "city_id,climate\n" + "".join(f"{c},{v}\n" for c, v in climate.items())
    )
    index = json.loads((rec / "2020" / "index.json").read_text())
    index[url] = {"source": "toy", "file": "toy/climate.csv", "status": 200, "headers": {}}
    (rec / "2020" / "index.json").write_text(json.dumps(index))
    # the methodology takes the climate index from the toy source (a copy, with only that changed)
    methodology = (ROOT / "scoring" / "methodology.yaml").read_text()
    changed = methodology.replace(
        'direction: "+", unit: index, source: numbeo}', 'direction: "+", unit: index, source: toy}', 1
    )
    assert changed.count("source: toy") == 1 and "climate_index" in changed.split("source: toy")[0].splitlines()[-1]
    (tmp_path / "methodology.yaml").write_text(changed)
    env = {
        "TALENT_INDEX_SOURCES": str(tmp_path / "sources.yaml"),
        "TALENT_INDEX_RECORDINGS": str(rec),
        "TALENT_INDEX_METHODOLOGY": str(tmp_path / "methodology.yaml"),
    }

    parsed = cli("parse", "toy-csv", str(rec / "2020" / "toy" / "climate.csv"), env=env)
    assert parsed.exit_code == 0 and parsed.stdout.startswith("city_id,climate"), parsed.output
    res = cli("refresh", "--offline", "--source", "toy", env=env)
    assert res.exit_code == 0, res.output
    assert "toy: snapshot" in res.output and "published release" in res.output
    rid = latest(home_copy)
    manifest = json.loads((home_copy / "releases" / rid / "manifest.json").read_text())
    assert "toy" in {i["source"] for i in manifest["inputs"]}
    ind = pd.read_parquet(home_copy / "releases" / rid / "indicators.parquet")
    got = ind[ind["indicator"] == "climate_index"].set_index("city_id")["value"].to_dict()
    assert got == {c: float(v) for c, v in climate.items()}
    log = (home_copy / "snapshots" / "toy" / "ingests.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["edition"] == "2020"
