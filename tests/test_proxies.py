"""Proxy values: a published figure of another scope or definition, labelled as such from the
sample through the curated table and the snapshot into the release; the methodology decides whether
an indicator may use them."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest

from scoring import load_methodology
from scoring.methodology import MethodologyError
from tasks.errors import SourceError
from tasks.publish.gather import gather_inputs, score
from tasks.publish.publisher import coverage_table
from tasks.publish.sample import sample_status, sample_values
from tasks.settings import CONFIG_DIR
from tasks.sources.curated import parse_table


def test_sample_values_are_real_proxy_or_illustrative_and_every_proxy_has_its_source():
    v = sample_values()
    assert set(v["status"]) == {"real", "proxy", "illustrative"}
    counts = v[v["edition"] == "2020"]["status"].value_counts().to_dict()
    assert counts == {"real": 463, "illustrative": 215, "proxy": 56}
    assert counts["illustrative"] / sum(counts.values()) < 0.30
    proxies = v[v["status"] == "proxy"]
    assert (proxies["stands_for"].str.len() > 10).all()
    # every proxy names where it was read: repository@commit:path, or a page
    assert proxies["provenance"].str.contains(r"; read from (?:[\w.-]+/[\w.-]+@[0-9a-f]{40}:|https?://)").all()
    assert (proxies["vintage"] != "").all()


def test_country_figures_are_the_wdi_sources_and_city_figures_win(home, registry):
    """The World Bank's figures are the `wdi` source's (one per country and series), not typed into
    the curated table: the release makes the proxies from them where a city has no figure of its own."""

    v = sample_values().set_index(["edition", "city_id", "field"])
    assert float(v.loc[("2020", "CHN", "rd_pct_gdp"), "value"]) == pytest.approx(2.20144)
    assert ("2020", "hangzhou", "rd_intensity") not in v.index  # no hand-typed country figure any more
    assert float(v.loc[("2020", "beijing", "rd_intensity"), "value"]) == 6.31  # the city's own 2019 figure
    inputs = gather_inputs(registry, load_methodology(), edition="2020")
    prov = inputs.provenance.set_index(["city_id", "indicator"])
    assert prov.loc[("beijing", "rd_intensity"), "status"] == "real"  # city figures win
    assert prov.loc[("hangzhou", "rd_intensity"), ["status", "source"]].tolist() == ["proxy", "wdi"]
    assert "country" in prov.loc[("hangzhou", "rd_intensity"), "stands_for"]
    assert inputs.values.loc["hangzhou", "rd_intensity"] == pytest.approx(2.20144)
    # per 1,000 to per 10,000 (France 3.2735 in 2019); a rank to a 0-1 index (Shenzhen 4th of 1006)
    assert inputs.values.loc["paris", "physician_density"] == pytest.approx(32.735)
    assert prov.loc[("paris", "physician_density"), "transform"] == "per 1,000 x 10 = per 10,000"
    assert inputs.values.loc["shenzhen", "economic_sustainability"] == pytest.approx(1 - 3 / 1005, abs=1e-4)
    s = sample_status("2020").set_index(["city_id", "indicator"])
    assert s.loc[("shanghai", "social_security_index"), "status"] == "illustrative"  # no OECD figure for China


def test_gdp_stands_for_night_lights_in_us_dollars_at_the_configured_rate(home, registry):
    """The sample reads no night-light composite: the city's or metro's GDP, converted to billion US$
    at the World Bank rate of its own year, stands for the whole indicator; a city without one is
    missing (imputed), never an illustrative radiance beside dollars."""

    inputs = gather_inputs(registry, load_methodology(), edition="2020")
    prov = inputs.provenance.set_index(["city_id", "indicator"])
    nl = inputs.values["night_lights"]
    assert nl.loc["beijing"] == pytest.approx(33105.97e8 / 6.61595717735439 / 1e9)  # 2018, CNY
    assert nl.loc["paris"] == pytest.approx(685.7 / 0.903421436257263)  # 2016, EUR
    assert nl.loc["new-york"] == pytest.approx(1812.674554)  # 2018, thousand US$
    assert set(nl[nl.isna()].index) == {"london", "toronto", "singapore", "tokyo", "zurich", "oslo"}
    assert prov.loc[("beijing", "night_lights"), "stands_for"] == "night-time light sum: GDP of the city"
    assert prov.loc[("paris", "night_lights"), "stands_for"] == "night-time light sum: GDP of the metro"
    assert prov.loc[("paris", "night_lights"), "transform"] == (
        "685.70 billion EUR (2016) converted at 0.9034 EUR per US$ (2016) to billion US$"
    )
    statuses = prov.xs("night_lights", level="indicator")["status"].value_counts()  # categorical: every status
    assert statuses[statuses > 0].to_dict() == {"proxy": 24, "missing": 6}


def test_recorded_curated_table_matches_the_sample():
    table = pd.read_csv(CONFIG_DIR / "curated" / "report_indicators_2020.csv", dtype=str, keep_default_na=False)
    s = sample_status("2020")
    merged = table.merge(s, on=["city_id", "indicator"], how="left", suffixes=("", "_sample"))
    assert len(table) == 240 == 30 * 8  # every city and indicator (and the GDP the night-light proxy reads)
    typed = merged[merged["status"] != "missing"]
    assert (typed["status"] == typed["status_sample"]).all()
    assert merged.loc[merged["status"] == "missing", "status_sample"].isna().all()  # nothing typed, nothing sampled
    proxies = merged[merged["status"] == "proxy"]
    assert len(proxies) > 30 and (proxies["stands_for"] == proxies["stands_for_sample"]).all()


def test_a_proxy_without_what_it_stands_for_is_refused():
    body = (
        b"city_id,indicator,value,unit,publication,edition,table_or_page,date_entered,status,note,stands_for,transform\n"
        b'paris,physician_density,32.7,"per 10,000 people",WDI,2019,p,2026-11-30,real,n,,\n'
        b'oslo,physician_density,49.4,"per 10,000 people",WDI,2019,p,2026-11-30,proxy,n,,\n'
    )
    with pytest.raises(SourceError, match=r"line 3: a proxy value without `stands_for`") as e:
        parse_table(body, "file:x.csv")
    assert "oslo" in str(e.value) and "physician_density" in str(e.value)
    old = body.replace(b",stands_for,transform", b"").replace(b",,\n", b"\n").replace(b",proxy,", b",real,")
    assert list(parse_table(old, "file:x.csv")["stands_for"]) == ["", ""]  # optional columns


def test_methodology_proxy_setting(tmp_path):
    m = load_methodology()
    assert m.allows_proxy("physician_density") and m.describe()["proxies"] == {"default": True}
    text = (CONFIG_DIR.parent / "scoring" / "methodology.yaml").read_text()
    bad = tmp_path / "m.yaml"
    bad.write_text(text.replace("  default: allowed", "  default: sometimes"))
    with pytest.raises(
        MethodologyError, match=r"m.yaml line \d+: proxies.default: expected 'allowed' or 'refused', found 'sometimes'"
    ):
        load_methodology(bad)
    own = tmp_path / "own.yaml"
    own.write_text(
        text.replace("unit: per 10000, source: curated,", "unit: per 10000, source: curated, proxies: refused,")
    )
    m2 = load_methodology(own)
    assert not m2.allows_proxy("physician_density") and m2.allows_proxy("rd_intensity")


def refusing(tmp_path, indicator_line_end: str):
    text = (CONFIG_DIR.parent / "scoring" / "methodology.yaml").read_text()
    path = tmp_path / "refusing.yaml"
    assert indicator_line_end in text
    path.write_text(text.replace(indicator_line_end, indicator_line_end[:-1] + ", proxies: refused,"))
    return load_methodology(path)


@pytest.fixture
def home(baseline, tmp_path, monkeypatch):
    shutil.copytree(baseline, tmp_path / "home")
    monkeypatch.setenv("TALENT_INDEX_HOME", str(tmp_path / "home"))


def test_refused_proxies_are_scored_as_missing(home, tmp_path, registry):

    allowed = load_methodology()
    refused = refusing(tmp_path, "unit: per 10000, source: curated,")
    a = gather_inputs(registry, allowed, edition="2020")
    r = gather_inputs(registry, refused, edition="2020")
    assert a.values.loc["paris", "physician_density"] == pytest.approx(32.735)
    assert pd.isna(r.values.loc["paris", "physician_density"])
    assert r.values.loc["beijing", "physician_density"] == pytest.approx(44.4)  # real: kept
    assert (
        r.values.loc["paris", "rd_intensity"] == a.values.loc["paris", "rd_intensity"]
    )  # other indicators keep theirs
    cov = coverage_table(score(r, registry, refused), r, None).set_index(["city_id", "indicator"])
    assert cov.loc[("paris", "physician_density"), "status"] == "imputed"
    assert cov.loc[("beijing", "physician_density"), "status"] == "real"
    cov_a = coverage_table(score(a, registry, allowed), a, None)
    assert (cov_a["status"] == "proxy").sum() == 165
    assert (cov["status"] == "proxy").sum() == 165 - 29
    assert cov_a.loc[cov_a["status"] == "proxy", "stands_for"].str.len().min() > 10


def test_an_indicator_left_without_values_is_named(home, tmp_path, registry):
    from tasks.errors import PipelineError

    refused = dataclasses.replace(load_methodology(), proxies_default=False)
    with pytest.raises(
        PipelineError,
        match=r"indicator education_spending_share, international_students, night_lights: every value is a proxy and "
        r"the methodology refuses",
    ):
        gather_inputs(registry, refused, edition="2020")


def test_values_that_changed_status_are_not_compared_as_moved():
    from tasks.ingest.core import compared, layout_changes

    cities = [f"c{i}" for i in range(10)]
    old = pd.DataFrame({"city_id": cities, "indicator": "x", "value": range(10), "status": "illustrative"})
    new = old.assign(value=list(range(10))[::-1], location="file:t.csv")
    assert layout_changes(compared(new, old), {})  # the same figures, reshuffled: a layout change
    assert compared(new.assign(status="proxy"), old).empty  # other figures: nothing to compare
    assert layout_changes(compared(new.assign(status="proxy"), old), {}) == []
    mixed = new.assign(status=["proxy"] * 5 + ["illustrative"] * 5)
    assert list(compared(mixed, old).index.get_level_values("city_id")) == cities[5:]


def test_coverage_keeps_repeated_texts_as_categories_and_writes_the_same_csv(home, registry):
    """The coverage table's repeated texts stay categories (tasks/publish/categories.py), the status
    is a text (counted and compared everywhere); the CSV is byte for byte that of the texts."""
    from tasks import csvsafe
    from tasks.publish.categories import as_texts

    m = load_methodology()
    inputs = gather_inputs(registry, m, edition="2020")
    cov = coverage_table(score(inputs, registry, m), inputs, sample_status("2020"))
    kept = ["city_id", "dimension", "indicator", "source", "stands_for", "transform", "vintage"]
    assert all(isinstance(cov[c].dtype, pd.CategoricalDtype) for c in kept)
    assert not isinstance(cov["status"].dtype, pd.CategoricalDtype)
    assert cov["status"].value_counts().to_dict() == {"real": 202, "proxy": 165, "illustrative": 121, "imputed": 22}
    assert cov.loc[cov["status"] == "proxy", "stands_for"].str.len().gt(10).all()
    texts = as_texts(cov)
    assert not any(isinstance(texts[c].dtype, pd.CategoricalDtype) for c in texts)
    assert csvsafe.to_csv(cov, index=False) == csvsafe.to_csv(texts, index=False)


def test_coverage_takes_the_sample_s_grades_and_provenance_for_its_own_cities_only(home, registry):
    """values.csv grades the values of the cities it lists (status, provenance); every other city's
    values keep what was gathered, their provenance the location they were read from."""
    m = load_methodology()
    inputs = gather_inputs(registry, m, edition="2020")
    result = score(inputs, registry, m)
    status = sample_status("2020")
    whole = coverage_table(result, inputs, status)
    assert isinstance(whole["value_provenance"].dtype, pd.CategoricalDtype)
    provenance = whole["value_provenance"].astype(object).fillna("")
    assert int((provenance != whole["location"].astype(object).fillna("")).sum()) == 379
    one = coverage_table(result, inputs, status[status["city_id"] == "beijing"])
    none = coverage_table(result, inputs, None)
    mine = (one["city_id"] == "beijing").to_numpy()
    for col in ("status", "stands_for", "transform", "vintage", "value_provenance"):
        assert one.loc[mine, col].astype(object).tolist() == whole.loc[mine, col].astype(object).tolist(), col
    assert one.loc[~mine, "status"].tolist() == none.loc[~mine, "status"].tolist()
    others = (
        one[~mine]
        .astype({"value_provenance": object, "location": object})
        .fillna({"value_provenance": "", "location": ""})
    )
    assert (others["value_provenance"] == others["location"]).all()
    said = (
        one[mine]
        .astype({"value_provenance": object, "location": object})
        .fillna({"value_provenance": "", "location": ""})
    )
    assert int((said["value_provenance"] != said["location"]).sum()) == 15  # what values.csv names
    assert "value_provenance" not in none
