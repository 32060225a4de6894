"""Edition policies: what each source reads for an edition of the index, and clear errors when the
policy has nothing for it."""

import pytest

from tasks.errors import PipelineError
from tasks.sources import EditionError, load_sources_raw, resolve_source


@pytest.fixture(scope="module")
def raw():
    return load_sources_raw()


def test_policies_of_the_shipped_configuration(raw):
    got = {}
    for edition in ("2019", "2020", "2021"):
        for name in ("numbeo", "gawc", "night_lights", "curated"):
            cfg = resolve_source(name, raw[name], edition)
            got[(name, edition)] = (cfg["vintage_policy"]["expected"], cfg["vintage_policy"]["rule"])
    assert got[("numbeo", "2019")] == ("2019", "equal")
    assert got[("gawc", "2019")] == ("2018", "equal") and got[("gawc", "2021")] == ("2020", "equal")
    assert got[("night_lights", "2020")] == ("none", "equal")  # offline: the sample reads no composite
    online = resolve_source("night_lights", raw["night_lights"], "2020", mode="online")["vintage_policy"]
    assert (online["expected"], online["rule"]) == ("2019", "equal")
    assert got[("curated", "2021")] == ("2021", "at_most")
    n = resolve_source("numbeo", raw["numbeo"], "2021")
    assert n["ranking_title"] == "2021"
    q = resolve_source("numbeo", raw["numbeo"], "2021", cadence="quarterly")
    assert q["ranking_title"] == "current" and q["vintage_policy"]["expected"] == "current"
    assert resolve_source("curated", raw["curated"], "2019")["url"] == "file:data/curated/report_indicators_2019.csv"
    g18 = resolve_source("gawc", raw["gawc"], "2019")
    assert g18["tiers_url"].endswith("world2018t.html") and "connectivity_url" not in g18


def test_a_policy_without_the_edition_says_which_editions_it_knows(raw):
    with pytest.raises(
        EditionError,
        match=r"no list of year 2031 \(lists known: 2019, 2020, 2021, 2022-H1, 2023, 2024, 2025, 2026\); find its "
        r"num with `talent-index sources discover hurun` and add it under hurun.lists",
    ):
        resolve_source("hurun", raw["hurun"], "2031")
    without_2024 = {**raw["gawc"], "editions": {k: v for k, v in raw["gawc"]["editions"].items() if k != "2024"}}
    with pytest.raises(
        EditionError,
        match=r"edition 2031 needs GaWC 2024 \(the newest published up to 2031\), but "
        r"gawc.editions has no pages for it \(known: 2018, 2020\)",
    ):
        resolve_source("gawc", without_2024, "2031")
    with pytest.raises(EditionError, match=r"no GaWC edition published up to 2010"):
        resolve_source("gawc", raw["gawc"], "2010")
    with pytest.raises(EditionError, match="ranking_title has no entry for cadence 'quarterly'"):
        resolve_source("numbeo", {**raw["numbeo"], "ranking_title": {"annual": "{edition}"}}, "2020", "quarterly")
    with pytest.raises(PipelineError, match="unknown cadence 'monthly'"):
        resolve_source("numbeo", raw["numbeo"], "2020", "monthly")


def test_auto_and_explicit_editions(monkeypatch, tmp_path):
    from tasks.store import editions

    assert editions.recorded_editions() == ["2019", "2020"]
    assert editions.resolve_edition("auto", "offline") == "2020"
    assert editions.resolve_edition(None, "online") == editions.this_year()
    with pytest.raises(PipelineError, match=r"edition 2031 is in the future"):
        editions.resolve_edition("2031", "online")
    with pytest.raises(PipelineError, match=r"edition '20x0': expected a year such as 2020, or 'auto'"):
        editions.resolve_edition("20x0", "offline")
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(tmp_path / "none"))
    with pytest.raises(PipelineError, match=r"offline: no recorded editions under .*none"):
        editions.resolve_edition("auto", "offline")


def test_quarterly_auto_refreshes_the_edition_of_the_latest_release(monkeypatch):
    from tasks.store import editions

    monkeypatch.setattr(editions, "latest_release_edition", lambda: "2019")
    assert editions.resolve_edition("auto", "online", cadence="quarterly") == "2019"
    monkeypatch.setattr(editions, "latest_release_edition", lambda: None)
    assert editions.resolve_edition("auto", "online", cadence="quarterly") == editions.this_year()


def test_an_edition_error_names_the_configuration_file_in_use(tmp_path, monkeypatch):
    import shutil

    from tasks.sources import sources_path

    mine = tmp_path / "my-sources.yaml"
    shutil.copy(sources_path(), mine)
    monkeypatch.setenv("TALENT_INDEX_SOURCES", str(mine))
    with pytest.raises(EditionError) as info:
        resolve_source("hurun", load_sources_raw()["hurun"], "2031")
    assert str(info.value).startswith(f"[source hurun, {mine}] no list of year 2031")
    assert "data/sources.yaml" not in str(info.value)
