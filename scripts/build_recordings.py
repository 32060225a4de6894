"""Render the bundled offline sample (data/recordings/<edition>/ and data/curated/) from
data/sample/values.csv, one recording set per edition the file holds.

Every value in the recordings comes from values.csv, which says for each one whether it is real
or a proxy (with source, vintage and, for a proxy, what it stands in for and how it was
transformed) or illustrative. The pages follow the real markup in SOURCES.md so the
parsers are exercised on the structures they will meet online; the URLs are the ones each source's
edition policy resolves for that edition (data/sources.yaml).

    .venv/bin/python scripts/build_recordings.py
"""

from __future__ import annotations

import csv
import html
import io
import json
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.sources import curated as curated_source  # noqa: E402
from tasks.sources import load_sources_config, load_sources_raw, numbeo  # noqa: E402

RECORDINGS = ROOT / "data" / "recordings"
REC = RECORDINGS
RECORDED_AT = "2026-11-26T00:00:00+00:00"
QOL_HEADERS = numbeo.SECTIONS["quality-of-life"][1]
CITY_PAGE_ORDER = [
    "Purchasing Power Index",
    "Safety Index",
    "Health Care Index",
    "Climate Index",
    "Cost of Living Index",
    "Property Price to Income Ratio",
    "Traffic Commute Time Index",
    "Pollution Index",
]


def snake(h):
    return h.lower().replace(" ", "_")


def load():
    """{edition: {(record, city): {field: row}}} and the registry rows."""
    values: defaultdict[str, defaultdict[tuple[str, str], dict]] = defaultdict(lambda: defaultdict(dict))
    with open(ROOT / "data" / "sample" / "values.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            values[r["edition"]][(r["record"], r["city_id"])][r["field"]] = r
    with open(ROOT / "data" / "cities.csv", encoding="utf-8") as fh:
        cities = list(csv.DictReader(fh))
    return values, cities


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="UTF-8">\n<title>{html.escape(title)}</title>\n'
        "<script>/* table ranks are filled in by a script in the browser */</script>\n</head>\n"
        f'<body>\n<div class="innerWidth">\n{body}\n</div>\n</body>\n</html>\n'
    )


def numbeo_ranking(values, cities, cfg, index):
    title = cfg["ranking_title"]
    rows = []
    for (record, city), fields in values.items():
        if record != f"numbeo:quality-of-life-rankings:{title}":
            continue
        name = next((c["numbeo_name"] for c in cities if c["city_id"] == city), city)
        rows.append(
            (float(fields["quality_of_life_index"]["value"]), name, [fields[snake(h)]["value"] for h in QOL_HEADERS])
        )
    rows.sort(key=lambda r: -r[0])
    head = "".join(f"<th><div>{h}</div></th>" for h in ["Rank", "City"] + QOL_HEADERS)
    trs = "\n".join(
        '<tr style="width: 100%"><td></td><td class="cityOrCountryInIndicesTable">'
        f"{html.escape(name)}</td>" + "".join(f'<td style="text-align: right">{v}</td>' for v in vals) + "</tr>"
        for _, name, vals in rows
    )
    body = (
        f"<h1>Quality of Life Index by City {title}</h1>\n"
        '<table id="t2" class="stripe row-border order-column compact">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{trs}\n</tbody>\n</table>"
    )
    add(
        index,
        "numbeo",
        numbeo.ranking_url(cfg),
        f"quality-of-life-rankings-{title}.html",
        page(f"Quality of Life Index by City {title}", body),
    )


def numbeo_city_pages(values, cities, cfg, index):
    for c in cities:
        fields = values.get(("numbeo:quality-of-life-city-page", c["city_id"]))
        if not fields:
            continue
        qol = fields["quality_of_life_index"]["value"]
        sub = "\n".join(
            f'<tr><td><a class="discreet_link" href="https://www.numbeo.com/{snake(h).split("_")[0]}/in/'
            f'{c["numbeo_slug"]}">{h}</a></td><td style="text-align: right">{fields[snake(h)]["value"]}</td>'
            '<td style="text-align: center"><span class="yellow_neutral_small">Moderate</span></td></tr>'
            for h in CITY_PAGE_ORDER
        )
        body = (
            f"<h1>Quality of Life in {html.escape(c['name_en'])}</h1>\n"
            '<table class="table_indices"><tr><th>Index</th><th></th></tr>\n'
            f'<tr><td>Quality of Life Index:</td><td style="text-align: right">{qol}</td></tr></table>\n'
            f"<table>\n{sub}\n</table>"
        )
        add(
            index,
            "numbeo",
            numbeo.city_page_url(cfg, c["numbeo_slug"]),
            f"quality-of-life-{c['city_id']}.html",
            page(f"Quality of Life in {c['name_en']}", body),
        )


def numbeo_price_pages(values, cities, cfg, index):
    symbol = {"EUR": "&#8364;", "USD": "$"}[cfg["display_currency"]]
    for c in cities:
        f = values[("numbeo:cost-of-living-city-page:EUR", c["city_id"])]

        def row(label, key, f=f):
            v = float(f[key]["value"])
            return (
                f'<tr><td>{label} </td><td style="text-align: right" class="priceValue ">{v:,.2f}&nbsp;{symbol}'
                '</td><td style="text-align: center" class="priceBarTd"><span class="barTextLeft"></span></td></tr>'
            )

        body = (
            f"<h1>Cost of Living in {html.escape(c['name_en'])}</h1>\n"
            '<table class="data_wide_table new_bar_table">\n'
            '<tr><th class="highlighted_th prices">Restaurants</th><th>Edit</th><th>Range</th></tr>\n'
            '<tr><td>Meal, Inexpensive Restaurant </td><td style="text-align: right" class="priceValue ">?</td><td></td></tr>\n'
            '<tr><th class="highlighted_th prices">Rent Per Month</th><th></th><th></th></tr>\n'
            + row("Apartment (1 bedroom) in City Centre", "rent_1br_centre_eur")
            + "\n"
            + row("Apartment (1 bedroom) Outside of Centre", "rent_1br_outside_eur")
            + "\n"
            '<tr><th class="highlighted_th prices">Salaries And Financing</th><th></th><th></th></tr>\n'
            + row("Average Monthly Net Salary (After Tax)", "monthly_net_salary_eur")
            + "\n</table>"
        )
        add(
            index,
            "numbeo",
            numbeo.prices_url(cfg, c["numbeo_slug"]),
            f"cost-of-living-{c['city_id']}.html",
            page(f"Cost of Living in {c['name_en']}", body),
        )


# Chinese names of the sample's headquarters outside the registry, and of the countries
SAMPLE_ZH = {"San Francisco": "旧金山", "Palo Alto": "帕罗奥图", "Mumbai": "孟买", "Bangalore": "班加罗尔"}


def hurun(values, cities, cfg, index, lists):
    """The list as hurun.net serves it: the rank page (its <select> offering the lists published up
    to this one) and the JSON API's pages of `page_limit` rows. The number of companies per city
    follows values.csv; names, valuations and ids are illustrative."""
    from tasks.sources.hurun import COUNTRY_ZH, render_answers

    rng = np.random.default_rng(2020)
    zh_country = {iso: zh for zh, iso in reversed(COUNTRY_ZH.items())}
    iso = {c["city_id"]: c["iso2"] for c in cities}
    name = {c["city_id"]: c["hurun_names"].split(";")[0] for c in cities}
    name_zh = {c["city_id"]: c["name_zh"] for c in cities}
    extra_country = {"San Francisco": "US", "Palo Alto": "US", "Mumbai": "IN", "Bangalore": "IN"}
    industries = ["Fintech", "E-commerce", "AI", "Logistics", "Health tech", "Software", "Education"]
    year = cfg["list_year"]
    companies = []
    for (record, city), fields in values.items():
        if record != f"hurun:global-unicorn-index:{year}":
            continue
        n = int(float(fields["unicorns"]["value"]))
        hq = name.get(city, city)
        code = iso.get(city) or extra_country[city]
        hq_cn = f"{zh_country[code]}-{name_zh.get(city) or SAMPLE_ZH[city]}"
        for k in range(n):
            companies.append(
                (
                    round(float(rng.uniform(1.0, 15.0)), 1),
                    f"Sample Unicorn {hq} {k + 1:02d}",
                    hq,
                    hq_cn,
                    industries[k % 7],
                )
            )
    companies.sort(key=lambda c: (-c[0], c[1]))
    rows = [
        {
            "Year": int(year),
            "Ranking": i,
            "Wealth_USD": val,
            "Wealth": round(val * 70),
            "ComName_En": co,
            "ComHeadquarters_En": hq,
            "ComHeadquarters_Cn": hq_cn,
            "Industry_En": ind,
            "ID": int(year) * 10000 + i,
            "ListID": int(year),
        }
        for i, (val, co, hq, hq_cn, ind) in enumerate(companies, start=1)
    ]
    offered = [
        (f"{k} Global Unicorn Index", v["num"])
        for k, v in sorted(lists.items(), reverse=True)
        if str(v["year"]) <= year
    ]
    for url, (body, ctype) in render_answers(cfg, rows, offered).items():
        if "HsRankDetailsList" in url:
            fname = f"api-{cfg['num']}-{parse_qs(urlsplit(url).query)['offset'][0]}.json"
        else:
            fname = f"rank-page-{cfg['num']}.html"
            body = body.replace(
                b"<select",
                b"<p>SAMPLE recording: the list's companies are illustrative; the number of companies per city "
                b"follows data/sample/values.csv.</p>\n<select",
            )
        add(index, "hurun", url, fname, body, ctype)


def gawc(values, cities, cfg, index):
    from openpyxl import Workbook

    display = {c["city_id"]: c["gawc_names"].split(";") for c in cities}
    country = {c["city_id"]: ("U.S." if c["iso2"] == "US" else c["country"]) for c in cities}
    country.update({"Hong Kong": "China", "Dubai": "United Arab Emirates", "London (Ontario)": "Canada"})
    g = cfg["gawc_edition"]
    by_tier = defaultdict(list)
    conn = []
    for (record, city), fields in values.items():
        names = display.get(city, [city])
        if record == f"gawc:tiers:{g}":
            # the tier page prints plain names ("New York"); the dataset uses "New York (New York)"
            by_tier[fields["tier"]["value"]].append(names[1] if len(names) > 1 else names[0])
        elif record == f"gawc:connectivity:{g}":
            conn.append(
                (
                    int(float(fields["gnc_rank"]["value"])),
                    names[0],
                    country.get(city, ""),
                    float(fields["gnc_abs"]["value"]),
                    float(fields["gnc_rel_pct"]["value"]),
                )
            )
    tiers = [
        "Alpha++",
        "Alpha+",
        "Alpha",
        "Alpha-",
        "Beta+",
        "Beta",
        "Beta-",
        "Gamma+",
        "Gamma",
        "Gamma-",
        "High Sufficiency",
        "Sufficiency",
    ]
    parts = []
    for t in tiers:
        if by_tier.get(t):
            shown = t.replace("-", "\u2212") if t.endswith("-") else t
            parts.append(
                f"<p><b>{shown}</b></p>\n<p>" + "<br>\n".join(html.escape(n) for n in sorted(by_tier[t])) + "</p>"
            )
    body = f"<h1>The World According to GaWC {g}</h1>\n<p>SAMPLE recording.</p>\n" + "\n".join(parts)
    add(index, "gawc", cfg["tiers_url"], f"world{g}t.html", page(f"The World According to GaWC {g}", body))
    if not cfg.get("connectivity_url"):
        return  # this GaWC edition has no connectivity dataset in the sample
    wb = Workbook()
    ws = wb.active
    ws.title = f"GNC{g}"
    ws.append(["Rank", "City", "Country", "GNC_abs", "GNC_rel(%)"])
    for row in sorted(conn):
        ws.append(list(row))
    wb.properties.created = wb.properties.modified = __import__("datetime").datetime(2026, 11, 26)
    buf = io.BytesIO()
    wb.save(buf)
    add(
        index,
        "gawc",
        cfg["connectivity_url"],
        f"connectivity-{g}.xlsx",
        reproducible_zip(buf.getvalue()),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def reproducible_zip(data: bytes) -> bytes:
    """The workbook with fixed entry times and a fixed 'modified' property (openpyxl stamps the
    time of saving), so that rebuilding the recordings changes no byte of an unchanged one."""
    import re
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2026-11-26T00:00:00Z", body)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(2026, 11, 26, 0, 0, 0)), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def wdi(values, cities, cfg, index):
    """The World Bank API's answers for the edition's request (every registry country, the policy's
    years), made from the real country figures in values.csv (one year per country and series: the
    rest of what the API holds is not in the sample)."""
    from tasks.registry.cities import load_registry
    from tasks.sources.wdi import render_answers

    figures = {}
    for (record, three), fields in values.items():
        if record.startswith("wdi:"):
            for series, r in fields.items():
                figures[(series, three)] = [(r["vintage"], float(r["value"]))]
    for n, (url, (body, ctype)) in enumerate(render_answers(cfg, load_registry(), figures).items()):
        name = f"{n:02d}-" + url.split("/indicator/")[1].split("?")[0].replace(".", "-").lower() + ".json"
        add(index, "wdi", url, name, body, ctype)


# the curated table's columns (tasks/sources/curated.py), with the optional ones the sample fills
CURATED_HEADER = [*curated_source.COLUMNS, "stands_for", "transform", "boundary"]


def curated(values, cities, cfg):
    """The curated table of edition E: real and proxy values with their publication (the part of the
    provenance before '; read from ') and page or path (after it), what a proxy stands in for and how it was
    transformed, the boundary a figure covers; illustrative placeholders named as such; a row with
    status `missing` where values.csv has nothing (the methodology's proxy source, e.g. the World
    Bank's country figure, or the missing-values policy applies)."""
    from tasks.sources.curated import UNITS

    edition = cfg["edition"]
    ed = str(int(edition) - 1)  # the report of edition E draws on publications of E-1
    publications = {
        "economic_sustainability": "CASS Global Urban Competitiveness Report",
        "rd_intensity": "Statistical bulletins on R&D spending",
        "education_spending_share": "City budgets and statistical yearbooks",
        "foreign_born_share": "NYC Global City Data",
        "international_students": "World Cities Culture Forum",
        "social_security_index": "INSEAD Global Talent Competitiveness Index",
        "physician_density": "INSEAD Global Talent Competitiveness Index",
        "gdp": "Statistical bulletins (city GDP), US BEA and Eurostat (metro GDP)",
    }

    def entered(ind: str, r: dict) -> str:
        # the IOM shares were typed in first, the figures of source_facts_more next, the city facts last
        if ind in ("gdp", "international_students") or (ind == "foreign_born_share" and r["vintage"] != "2014"):
            return "2026-12-04"
        return "2026-11-26" if ind == "foreign_born_share" else "2026-11-30"

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CURATED_HEADER)
    for c in cities:
        fields = values[(f"curated:report-indicators:{edition}", c["city_id"])]
        for ind, pub in publications.items():
            unit = UNITS[ind] if isinstance(UNITS[ind], str) else ""
            r = fields.get(ind)
            if r is None:
                w.writerow(
                    [c["city_id"], ind, "", unit or UNITS[ind][0], pub, ed, "", "2026-12-04", "missing",
                     "no figure typed: the methodology's proxy source or the missing-values policy applies",
                     "", "", ""]
                )  # fmt: skip
            elif r["status"] in ("real", "proxy"):
                publication, _, page = r["provenance"].partition("; read from ")
                if not page:  # a one-part provenance: the whole of it is the publication
                    publication, page = r["provenance"].split(" (", 1)[0], r["provenance"]
                w.writerow(
                    [
                        c["city_id"],
                        ind,
                        r["value"],
                        r.get("unit") or unit,
                        publication,
                        r["vintage"],
                        page,
                        entered(ind, r),
                        r["status"],
                        r["provenance"],
                        r.get("stands_for", ""),
                        r.get("transform", ""),
                        r.get("boundary", ""),
                    ]
                )
            else:
                w.writerow(
                    [
                        c["city_id"],
                        ind,
                        r["value"],
                        unit,
                        pub,
                        ed,
                        "",
                        "2026-11-26",
                        "illustrative",
                        "illustrative placeholder, not transcribed from the publication",
                        "",
                        "",
                        "",
                    ]
                )
    path = ROOT / cfg["url"].removeprefix("file:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")


def add(index, source, url, filename, content, content_type="text/html; charset=utf-8"):
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = REC / index["__edition__"] / source / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    index[url] = {
        "source": source,
        "file": f"{source}/{filename}",
        "status": 200,
        "headers": {"content-type": content_type},
        "recorded_at": RECORDED_AT,
        "sample": True,
    }


def main():
    import shutil

    by_edition, cities = load()
    for edition in sorted(by_edition):
        values = by_edition[edition]
        cfg = load_sources_config(edition=edition)
        shutil.rmtree(REC / edition, ignore_errors=True)
        index = {"__edition__": edition}
        numbeo_ranking(values, cities, cfg["numbeo"], index)
        numbeo_city_pages(values, cities, cfg["numbeo"], index)
        numbeo_price_pages(values, cities, cfg["numbeo"], index)
        hurun(values, cities, cfg["hurun"], index, load_sources_raw()["hurun"]["lists"])
        gawc(values, cities, cfg["gawc"], index)
        wdi(values, cities, cfg["wdi"], index)
        curated(values, cities, cfg["curated"])
        del index["__edition__"]
        (REC / edition / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        print(f"edition {edition}: wrote {len(index)} recordings under {REC / edition}")


if __name__ == "__main__":
    main()
