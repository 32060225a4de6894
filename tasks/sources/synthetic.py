"""Generated recordings in the real markup for any registry (every value illustrative): what an
offline refresh on a registry of any size replays. Used by the end-to-end benchmark and by the
tests of registries built with `talent-index cities build`. It writes every source's formats, so it
lives with the sources (it is no source itself: no `SPEC`).

    write_recordings(registry_table, root)   # root/recordings/index.json, root/sources.yaml, root/curated.csv
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from tasks.registry.cities import Registry
from tasks.settings import CONFIG_DIR
from tasks.sources import hurun, load_sources_config, numbeo, wdi

# Ranges of the quality-of-life ranking's columns, in their order (numbeo.SECTIONS)
RANGES = [(80, 190), (30, 130), (20, 85), (40, 80), (25, 130), (4, 45), (20, 55), (15, 90), (40, 98)]
CURATED = {
    "economic_sustainability": ("index (0-1)", 0.2, 1.0),
    "rd_intensity": ("% of GDP", 0.5, 6.5),
    "education_spending_share": ("percent", 8, 22),
    "foreign_born_share": ("percent", 0.1, 60),
    "international_students": ("students", 1000, 120000),
    "social_security_index": ("score (0-100)", 30, 95),
    "physician_density": ("per 10,000 people", 10, 70),
}


def _first(names: str, fallback: str) -> str:
    return next((n for n in str(names).split(";") if n.strip()), fallback)


def write_recordings(
    reg: pd.DataFrame, root: Path, seed: int = 0, edition: str = "2020", uncovered: frozenset[str] = frozenset()
) -> Path:
    """Recordings of every source of `edition` for the cities of `reg` (a registry table with a
    city_id column), sources.yaml pointing the curated table at root/curated.csv. Cities in
    `uncovered` are what a real source often lacks: absent from Numbeo's ranking, their Numbeo pages
    recorded as HTTP 404, and no curated values."""

    rec = root / "recordings" / edition
    for d in ("numbeo", "hurun", "gawc", "night_lights", "wdi"):
        (rec / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(reg)
    ids = list(reg["city_id"])
    numbeo_names = [r.numbeo_name or f"{r.name_en}, {r.country}" for r in reg.itertuples()]
    slugs = [r.numbeo_slug or r.city_id for r in reg.itertuples()]
    gawc_names = [_first(r.gawc_names, r.name_en) for r in reg.itertuples()]
    hurun_names = [_first(r.hurun_names, r.name_en) for r in reg.itertuples()]
    countries = list(reg["country"])
    lat, lon = reg["lat"].astype(float).to_numpy(), reg["lon"].astype(float).to_numpy()
    raw = yaml.safe_load((CONFIG_DIR / "sources.yaml").read_text())
    raw["curated"]["url"] = f"file://{root / 'curated.csv'}"
    raw["night_lights"]["offline"] = {"format": "vnl-clip"}  # generated clips (the bundled sample has none)
    (root / "sources.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_sources_config(edition=edition)
    index: dict[str, dict] = {}

    def add(source, url, name, body, ctype="text/html; charset=utf-8"):
        (rec / source / name).write_bytes(body if isinstance(body, bytes) else body.encode())
        index[url] = {"source": source, "file": f"{source}/{name}", "status": 200, "headers": {"content-type": ctype}}

    vals = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in RANGES]).round(2)
    head = "".join(f"<th><div>{h}</div></th>" for h in ["Rank", "City", *numbeo.SECTIONS["quality-of-life"][1]])
    rows = "\n".join(
        '<tr style="width: 100%"><td></td><td class="cityOrCountryInIndicesTable">'
        f"{numbeo_names[i]}</td>" + "".join(f'<td style="text-align: right">{v}</td>' for v in vals[i]) + "</tr>"
        for i in np.argsort(-vals[:, 0])
        if ids[i] not in uncovered
    )
    add(
        "numbeo",
        numbeo.ranking_url(cfg["numbeo"]),
        "ranking.html",
        f"<html><head><title>Quality of Life Index by City {cfg['numbeo'].get('ranking_title', edition)}</title>"
        f'</head><body><table id="t2" class="stripe"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table></body></html>",
    )
    salary = rng.uniform(500, 5000, n)
    rent = salary * rng.uniform(0.2, 0.9, n)
    for i in range(n):
        if ids[i] in uncovered:
            for url in (numbeo.city_page_url(cfg["numbeo"], slugs[i]), numbeo.prices_url(cfg["numbeo"], slugs[i])):
                index[url] = {"source": "numbeo", "file": "numbeo/ranking.html", "status": 404, "headers": {}}
            continue
        add(
            "numbeo",
            numbeo.prices_url(cfg["numbeo"], slugs[i]),
            f"col-{ids[i]}.html",
            '<html><head><title>Cost of living</title></head><body><table class="data_wide_table new_bar_table">'
            "<tr><th>Rent Per Month</th></tr>"
            f'<tr><td>Apartment (1 bedroom) in City Centre</td><td class="priceValue">{rent[i]:,.2f}&nbsp;&#8364;'
            "</td><td></td></tr>"
            f'<tr><td>Average Monthly Net Salary (After Tax)</td><td class="priceValue">{salary[i]:,.2f}&nbsp;'
            "&#8364;</td><td></td></tr></table></body></html>",
        )
    counts = rng.poisson(0.8, n)
    comp, k = [], 0
    year = cfg["hurun"]["list_year"]
    for i in range(n):
        for _ in range(counts[i]):
            k += 1
            comp.append(
                {
                    "Year": year,
                    "Ranking": k,
                    "ComName_En": f"Company {k}",
                    "Wealth_USD": round(float(rng.uniform(1, 20)), 1),
                    "ComHeadquarters_En": f"{hurun_names[i]}, {countries[i]}",
                    "ID": k,
                }
            )
    for url, (body, ctype) in hurun.render_answers(cfg["hurun"], comp).items():
        add("hurun", url, f"hurun-{len(index)}", body, ctype)
    add(
        "gawc",
        cfg["gawc"]["tiers_url"],
        "tiers.html",
        "<html><body><p><b>Beta</b></p><p>" + "<br>".join(gawc_names) + "</p></body></html>",
    )
    conn = "Rank,City,Country,GNC_abs,GNC_rel(%)\n" + "".join(
        f'{i + 1},"{gawc_names[i]}","{countries[i]}",{100000 - i},{100 - i * 50 / n:.4f}\n' for i in range(n)
    )
    add("gawc", cfg["gawc"]["connectivity_url"], "conn.csv", conn, "text/csv")
    res = 15 / 3600
    for i in range(n):
        size = 48
        data = rng.gamma(0.8, 5.0, (size, size)).astype("float32")
        with MemoryFile() as mem:
            with mem.open(
                driver="GTiff",
                width=size,
                height=size,
                count=1,
                dtype="float32",
                crs="EPSG:4326",
                transform=from_origin(lon[i] - size / 2 * res, lat[i] + size / 2 * res, res, res),
                nodata=-999.0,
            ) as ds:
                ds.write(data, 1)
            add(
                "night_lights",
                cfg["night_lights"]["clip_url_template"].format(
                    year=cfg["night_lights"]["composite_year"], city_id=ids[i]
                ),
                f"{ids[i]}.tif",
                mem.read(),
                "image/tiff",
            )

    figures = {}
    for series, spec in cfg["wdi"]["series"].items():
        lo, hi = spec.get("bounds", [0, 10])
        for three in wdi.countries(Registry(reg.set_index("city_id"))):
            figures[(series, three)] = [(int(edition) - 1, round(float(rng.uniform(lo, hi / 3)), 2))]
    for url, (body, ctype) in wdi.render_answers(cfg["wdi"], Registry(reg.set_index("city_id")), figures).items():
        add("wdi", url, f"wdi-{len(index)}.json", body, ctype)
    with open(root / "curated.csv", "w") as f:
        f.write("city_id,indicator,value,unit,publication,edition,table_or_page,date_entered,status,note\n")
        for i in range(n):
            if ids[i] in uncovered:
                continue
            for ind, (unit, lo, hi) in CURATED.items():
                f.write(
                    f'{ids[i]},{ind},{rng.uniform(lo, hi):.3f},"{unit}",generated,{int(edition) - 1},,2026-11-26,'
                    "illustrative,\n"
                )
            f.write(f'{ids[i]},gdp,,"billion USD",generated,{int(edition) - 1},,2026-11-26,missing,\n')
    (rec / "index.json").write_text(json.dumps(index))
    return root
