"""One source end to end, without Prefect: fetch/replay -> raw -> parse -> tidy -> validate -> snapshot.

The Prefect subflows in `flows/ingest.py` call these steps one by one; tests call them directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .cities import Registry
from .errors import FetchError, PipelineError, SourceError, with_city
from .http import Fetcher, HttpPolicy
from .sources import SOURCES
from .sources.base import Request
from .storage import latest_snapshot, read_snapshot, utc_now, write_snapshot
from .validate import ValidationReport, extra_check, load_suite
from .validate import run_suite as _run_suite


@dataclass
class Fetched:
    source: str
    parsed: dict[Request, object]  # a DataFrame per response, or plain records for per-city pages
    raws: list[dict]
    requests_made: int


@dataclass
class Ingested:
    source: str
    edition: str
    tidy: pd.DataFrame
    extras: dict[str, pd.DataFrame]
    raws: list[dict]
    reports: list[ValidationReport] = field(default_factory=list)
    snapshot: dict | None = None
    requests_made: int = 0

    @property
    def warnings(self):
        return [w for r in self.reports for w in r.warnings]


def fetch_and_parse(source: str, cfg: dict, mode: str, registry: Registry,
                    progress: Callable[[str], None] | None = None, fetcher: Fetcher | None = None) -> Fetched:
    """Plan, fetch (or replay) and parse every response a source needs, in rounds."""
    module = SOURCES[source]
    fetcher = fetcher or Fetcher(source=source, mode=mode, policy=HttpPolicy.from_config(cfg.get("http")),
                                 parser_version=module.PARSER_VERSION)
    parsed: dict[Request, object] = {}
    raws = []
    with getattr(module, "parse_context", contextlib.nullcontext)():
        _fetch_rounds(source, cfg, registry, module, fetcher, parsed, raws, progress)
    return Fetched(source=source, parsed=parsed, raws=raws, requests_made=fetcher.requests_made)


def _fetch_rounds(source, cfg, registry, module, fetcher, parsed, raws, progress) -> None:
    while True:
        todo = [r for r in module.plan(cfg, registry, parsed) if r not in parsed]
        if not todo:
            break
        for n, req in enumerate(todo, start=1):
            if progress:
                progress(f"{source}: {req.kind} {n}/{len(todo)} {req.city_id or ''}".rstrip())
            try:
                raw = fetcher.get(req.url)
                parsed[req] = module.parse(req, raw.read(), registry, cfg)
            except (FetchError, SourceError) as exc:
                named = with_city(exc, req.city_id)
                if named is exc:
                    raise
                raise named from None
            raws.append({"url": req.url, "kind": req.kind, "city_id": req.city_id, "path": raw.path,
                         "sha256": raw.sha256, "size": raw.size, "fetched_at": raw.fetched_at,
                         "mode": raw.mode, "reused": raw.reused})


def tidy_source(source: str, cfg: dict, registry: Registry, fetched: Fetched) -> tuple[pd.DataFrame, dict]:
    """The long table (city_id, indicator, value, unit, edition, ...) and source-specific extras."""
    module = SOURCES[source]
    parsed = fetched.parsed
    if source == "night_lights":  # VNP46A4 tiles -> per-city statistics, once for tidy and details
        parsed = module.city_records(cfg, registry, parsed)
    tidy = module.tidy(cfg, registry, parsed)
    extras: dict[str, pd.DataFrame] = {}
    if source == "hurun":
        companies = next(iter(fetched.parsed.values()))
        extras["companies"] = companies
        extras["unmatched_cities"] = module.unmatched_summary(companies)
    elif source == "night_lights":
        extras["zonal_stats"] = module.details(parsed)
    elif source == "numbeo":
        ranking = next((df for r, df in fetched.parsed.items() if r.kind == "numbeo-rankings"), None)
        if ranking is not None:
            extras["ranking"] = ranking
    elif source == "curated":
        extras["table"] = next(iter(fetched.parsed.values()))
    elif source == "gawc":
        for r, df in fetched.parsed.items():
            extras[r.kind.replace("gawc-", "")] = df
    return tidy, extras


def wide(tidy: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """city_id x indicator, every registry city present (NaN where the source has no value)."""
    if "indicator" not in tidy.columns:
        return tidy
    w = tidy.pivot_table(index="city_id", columns="indicator", values="value", aggfunc="first")
    w = w.reindex(pd.Index(registry.ids, name="city_id").union(w.index))
    return w.reset_index()


def change_check(source: str, tidy: pd.DataFrame, previous: pd.DataFrame | None, share: float) -> list:
    """Values that moved more than `share` (relative) since the previous snapshot: a warning."""
    if previous is None or "indicator" not in tidy.columns or previous.empty:
        return []
    old = previous.set_index(["city_id", "indicator"])["value"]
    new = tidy.set_index(["city_id", "indicator"])["value"]
    both = pd.concat({"old": old, "new": new}, axis=1, join="inner").dropna()
    base = both["old"].abs().where(both["old"].abs() > 0, np.nan)
    moved = both[((both["new"] - both["old"]).abs() / base) > share]
    return [f"{c}:{i} {r.old:g}->{r.new:g}" for (c, i), r in moved.iterrows()]


def validate_source(source: str, cfg: dict, registry: Registry, tidy: pd.DataFrame,
                    extras: dict[str, pd.DataFrame], docs_dir=None) -> list[ValidationReport]:
    """Run the source's suites; add the change and coverage checks GX does not express.

    `docs_dir`: render GX Data Docs of every validation into this folder."""
    import functools

    module = SOURCES[source]
    n = len(registry.ids)
    params = {"registry_city_ids": registry.ids, "registry_count": n,
              # sanity bounds that grow with the registry (a real 2020 ranking has ~300 rows, the list 586)
              "ranking_max_rows": max(2000, 2 * n), "companies_max_rows": max(5000, 2 * n)}
    run_suite = functools.partial(_run_suite, docs_dir=docs_dir)
    reports = []
    main_suite = module.SUITES.get("indicators") or module.SUITES.get("tiers")
    table = wide(tidy, registry)
    report = run_suite(table, load_suite(main_suite), source=source, params=params)
    prev_info = latest_snapshot(source, edition=str(cfg.get("edition")))
    previous = read_snapshot(prev_info) if prev_info else None
    moved = change_check(source, tidy, previous, float(cfg.get("change_warning_share", 0.5)))
    report.results.append(extra_check("change_vs_previous_snapshot", "warning", moved, column="value",
                                      observed=prev_info["snapshot_id"] if prev_info else None))
    if "indicator" in tidy.columns:
        present = set(tidy.dropna(subset=["value"])["city_id"])
        missing = [c for c in registry.ids if c not in present]
        report.results.append(extra_check("every_registry_city_present", "warning", missing, column="city_id"))
    if source == "numbeo" and previous is not None and "ranking" in extras and "ranking" in prev_info.get("tables", {}):
        before = set(read_snapshot(prev_info, "ranking")["city_id"].dropna())
        now = set(extras["ranking"]["city_id"].dropna())
        report.results.append(extra_check("city_still_in_ranking", "warning", sorted(before - now), column="city_id"))
    reports.append(report)
    if source == "numbeo" and "ranking" in extras:
        reports.append(run_suite(extras["ranking"], load_suite(module.SUITES["ranking"]), source=source,
                                 key_column="city", params=params))
    if source == "curated" and "table" in extras:
        t = run_suite(extras["table"], load_suite(module.SUITES["table"]), source=source,
                      key_column="city_id", params={**params, "expected_rows": len(registry.ids) * 7})
        t.results.append(extra_check("unit_matches_indicator", "error", module.unit_mismatches(extras["table"]),
                                     column="unit"))
        reports.append(t)
    if source == "hurun":
        companies = extras["companies"]
        rep = run_suite(companies, load_suite(module.SUITES["companies"]), source=source, key_column="company",
                        params=params)
        stated = companies.attrs.get("stated_count")
        rep.results.append(extra_check("company_count_equals_stated_count", "error",
                                       [] if stated in (None, len(companies)) else
                                       [f"{len(companies)} rows, the page states {stated}"], observed=stated))
        reports.append(rep)
    return reports


def extra_summary(source: str, extras: dict[str, pd.DataFrame]) -> str | None:
    """Markdown a data engineer should see beside the data-quality summary (run artifacts)."""
    if source == "hurun" and "unmatched_cities" in extras:
        u = extras["unmatched_cities"]
        lines = [f"### Hurun companies outside the index cities: {int(u['companies'].sum())} in {len(u)} cities",
                 "", "| city | country | companies |", "|---|---|---|"]
        lines += [f"| {r.city} | {r.country} | {r.companies} |" for r in u.head(50).itertuples()]
        return "\n".join(lines)
    return None


def snapshot_source(source: str, cfg: dict, tidy: pd.DataFrame, extras: dict, raws: list[dict],
                    reports: list[ValidationReport]) -> dict:
    failed = [r for r in reports if not r.success]
    if failed:
        raise PipelineError(f"refusing to snapshot {source}: suite {failed[0].suite} failed")
    provenance = {
        "producer": source, "parser_version": SOURCES[source].PARSER_VERSION,
        "inputs": raws, "validated_at": utc_now(),
        "validation": [r.as_dict() for r in reports],
    }
    return write_snapshot(source, str(cfg.get("edition")), tidy, provenance, extras=extras)


def ingest(source: str, cfg: dict, mode: str, registry: Registry, progress=None) -> Ingested:
    """The whole ingestion of one source; raises DataQualityError when an `error` check fails."""
    fetched = fetch_and_parse(source, cfg, mode, registry, progress)
    tidy, extras = tidy_source(source, cfg, registry, fetched)
    reports = validate_source(source, cfg, registry, tidy, extras)
    for r in reports:
        r.raise_for_errors()
    snap = snapshot_source(source, cfg, tidy, extras, fetched.raws, reports)
    return Ingested(source=source, edition=str(cfg.get("edition")), tidy=tidy, extras=extras, raws=fetched.raws,
                    reports=reports, snapshot=snap, requests_made=fetched.requests_made)
