"""One source end to end, without Prefect: fetch/replay -> raw -> parse -> tidy -> validate -> snapshot.

Source-agnostic: everything a source does differently is declared by its module (`SPEC`, see
`tasks/sources/base.py`). The Prefect subflows in `flows/ingest.py` call these steps one by one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tasks.errors import FetchError, NotPublished, PipelineError, SourceError, VintageMismatch, with_city
from tasks.http import Fetcher, HttpPolicy
from tasks.memory import release_freed_memory
from tasks.registry.cities import Registry
from tasks.sources import source_spec, sources_path, vintage_policy
from tasks.sources.base import Request, Source
from tasks.store.home import require_current_format
from tasks.store.storage import (
    append_ingest,
    read_ingest_log,
    read_snapshot,
    snapshot_damage,
    snapshot_info,
    utc_now,
    write_snapshot,
)
from tasks.validate import ValidationReport, extra_check, load_suite
from tasks.validate import run_suite as _run_suite

from .parse_pool import ParsePool, parse_apart, parse_one_apart, parse_workers


@dataclass
class Fetched:
    source: str
    parsed: dict[Request, object]  # a DataFrame per response, plain records for per-city pages, None: not published
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
    snapshot: dict = field(default_factory=dict)
    requests_made: int = 0
    vintage: dict = field(default_factory=dict)

    @property
    def warnings(self):
        return [w for r in self.reports for w in r.warnings]


def fetch_and_parse(
    source: str,
    cfg: dict,
    mode: str,
    registry: Registry,
    progress: Callable[[str], None] | None = None,
    fetcher: Fetcher | None = None,
) -> Fetched:
    """Plan, fetch (or replay) and parse every response a source needs, in rounds."""
    spec = source_spec(source, cfg)
    try:
        spec.check_registry(registry)
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    if mode != "offline":
        preflight(source, cfg)
    fetcher = fetcher or Fetcher(
        source=source,
        mode=mode,
        policy=HttpPolicy.from_config(cfg.get("http")),
        parser_version=spec.parser_version,
        edition=cfg.get("edition"),
    )
    parsed: dict[Request, object] = {}
    raws: list[dict] = []
    with spec.parse_context():
        _fetch_rounds(spec, cfg, registry, fetcher, parsed, raws, progress, mode)
    release_freed_memory()  # what parsing the pages left behind (their trees), before the tidy
    return Fetched(source=source, parsed=parsed, raws=raws, requests_made=fetcher.requests_made)


def missing_secrets(cfg: dict) -> list[tuple[str, str, str]]:
    """(variable, header, value) of every secret the source's requests carry (`${VAR}` in its
    headers) that the environment does not set."""

    return [
        (var, header, value)
        for header, value in (cfg.get("http", {}).get("headers") or {}).items()
        for var in re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", str(value))
        if not os.environ.get(var)
    ]


def without_secrets(cfg: dict, allow_vintage_fallback: bool) -> dict:
    """A source with `without_secrets:` settings whose secrets are not set, online in a run that
    allows vintage fallbacks: those settings (night lights: no composite read, so the methodology's
    GDP proxy stands in). Its policy stays the real one, so what it reads then is a vintage fallback,
    listed in the release; without the permission, the missing secret stops the source as ever."""
    if cfg.get("mode", "offline") == "offline" or not allow_vintage_fallback or not cfg.get("without_secrets"):
        return cfg
    missing = missing_secrets(cfg)
    if not missing:
        return cfg
    return {**cfg, **cfg["without_secrets"], "secrets_missing": sorted({m[0] for m in missing})}


def preflight(source: str, cfg: dict) -> None:
    """Before any request: every secret the source's requests carry (`${VAR}` in its headers) is set."""

    if cfg.get("secrets_missing"):  # read without them (`without_secrets`): nothing it requests carries them
        return
    for var, header, value in missing_secrets(cfg):
        raise FetchError(
            source,
            str(sources_path()),
            f"{var} is not set: every request carries the header {header}: {value} (a secret: "
            f"set it in the environment or a Prefect Secret block); nothing was fetched",
        )


def _fetch_rounds(spec: Source, cfg, registry, fetcher, parsed, raws, progress, mode: str) -> None:
    """Every request the source plans, in rounds. A city's page the source does not publish (404
    or 410) leaves that city's values missing (named in progress and in the validation's 'every
    registry city present' warning); a request the plan marks `optional` that answers 404 is parsed
    as None (the plan then asks for something else); any other failure stops the source. A round of
    many per-city pages replayed offline is parsed in worker processes (`parse_pool`), unless the
    source's pages parse faster in process (`Source.city_pages_in_workers`)."""
    not_published: set[Request] = set()
    while True:
        todo = [r for r in spec.plan(cfg, registry, parsed) if r not in parsed and r not in not_published]
        if not todo:
            break
        workers = parse_workers(sum(1 for r in todo if r.city_id), mode) if spec.city_pages_in_workers else 0
        if not workers:
            _fetch_round(spec, cfg, registry, fetcher, todo, None, parsed, raws, not_published, progress)
            continue
        with ParsePool(spec.name, cfg, registry, workers) as pool:
            _fetch_round(spec, cfg, registry, fetcher, todo, pool, parsed, raws, not_published, progress)


def _fetch_round(spec, cfg, registry, fetcher, todo, pool, parsed, raws, not_published, progress) -> None:
    """One round's requests in order; with a `pool`, its per-city pages after the first are parsed by
    the workers, their records stored in request order all the same."""
    in_process_check = True  # the first city page is parsed here: a changed layout fails at once
    for n, req in enumerate(todo, start=1):
        if progress:
            progress(f"{spec.name}: {req.kind} {n}/{len(todo)} {req.city_id or ''}".rstrip())
        to_pool = pool is not None and req.city_id is not None and not in_process_check
        try:
            raw = fetcher.get(req.url, headers=req.meta.get("headers"))
            body = raw.read()
            if to_pool:
                pool.submit(req, body)
            else:
                if pool is not None:
                    parsed.update(pool.drain())  # what the workers hold comes first
                if parse_apart(len(body)):
                    parsed[req] = parse_one_apart(spec.name, cfg, registry, req, body)
                else:
                    parsed[req] = spec.parse(req, body, registry, cfg)
                in_process_check = in_process_check and req.city_id is None
        except NotPublished as exc:
            if req.meta.get("optional"):  # the source's plan tries something else (e.g. an older year)
                if pool is not None:
                    parsed.update(pool.drain())
                parsed[req] = None
                if progress:
                    progress(f"{spec.name}: {req.url} not published ({exc.detail})")
                continue
            if not req.city_id:
                raise
            not_published.add(req)
            if progress:
                progress(f"{spec.name}: {req.city_id} not published ({exc.detail}): its values are missing")
            continue
        except (FetchError, SourceError) as exc:
            named = with_city(exc, req.city_id)
            if named is exc:
                raise
            raise named from None
        raws.append(
            {
                "url": req.url,
                "kind": req.kind,
                "city_id": req.city_id,
                "path": raw.path,
                "root": raw.root,
                "sha256": raw.sha256,
                "size": raw.size,
                "fetched_at": raw.fetched_at,
                "mode": raw.mode,
                "reused": raw.reused,
            }
        )
        if to_pool:
            parsed.update(pool.ready())  # the workers' errors name their own page and city
    if pool is not None:
        parsed.update(pool.drain())


def check_vintage(source: str, cfg: dict, fetched: Fetched, allow_fallback: bool = False) -> dict:
    """What the data states against what the edition policy expects. A mismatch is refused
    (VintageMismatch naming both) unless `allow_fallback`, in which case it is recorded."""
    spec = source_spec(source, cfg)
    policy = vintage_policy(cfg)
    found = spec.found_vintage(cfg, fetched.parsed)
    ok = policy.matches(found)
    record: dict[str, object] = {
        "edition": str(cfg.get("edition")),
        "expected": policy.describe(),
        "found": found,
        "ok": ok,
        "note": policy.note,
    }
    notes = spec.vintage_notes(cfg, fetched.parsed)
    if notes:  # e.g. GaWC 2024's tiers with the 2020 connectivity data set
        record["notes"] = notes
    older = spec.fallback_values(cfg, fetched.parsed)
    if older:  # e.g. curated rows carried forward from the previous edition's table
        record["fallback_values"] = older
    if not ok and not allow_fallback:
        raise VintageMismatch(
            f"[source {source}] edition {cfg.get('edition')}: expected vintage {policy.describe()}, "
            f"found {found or 'none stated'}; publish it anyway with --allow-vintage-fallback "
            "(the manifest and report then list the fallback)"
        )
    if not ok:
        record["fallback"] = True
    return record


def tidy_source(
    source: str, cfg: dict, registry: Registry, fetched: Fetched, prepared: dict | None = None
) -> tuple[pd.DataFrame, dict]:
    """The long table (city_id, indicator, value, unit, edition, ...) and source-specific extras.

    `prepared`: the parsed responses after the source's work units (when the flow ran them)."""
    spec = source_spec(source, cfg)
    parsed = prepared if prepared is not None else spec.prepare(cfg, registry, fetched.parsed)
    return spec.tidy(cfg, registry, parsed), spec.extras(cfg, registry, parsed, fetched.parsed)


def wide(tidy: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """city_id x indicator, every registry city present (NaN where the source has no value)."""
    if "indicator" not in tidy.columns:
        return tidy
    w = tidy.pivot_table(index="city_id", columns="indicator", values="value", aggfunc="first")
    # an indicator no city has a value of (every row `missing`) keeps its column
    w = w.reindex(index=pd.Index(registry.ids, name="city_id").union(w.index), columns=tidy["indicator"].unique())
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


class PreviousSnapshot:
    """The previous ingest's snapshot of a source, its tables read on demand."""

    def __init__(self, info: dict):
        self.info = info

    @property
    def snapshot_id(self) -> str:
        return self.info["snapshot_id"]

    def has(self, table: str) -> bool:
        return table in self.info.get("tables", {})

    def read(self, table: str = "table") -> pd.DataFrame:
        return read_snapshot(self.info, table)


def previous_snapshot(source: str, edition: str) -> PreviousSnapshot | None:
    """What an ingest is compared with: the latest intact ingest of the same edition, else of the
    newest earlier edition (a new year's data is checked against last year's). A damaged snapshot
    is never compared with (the ingest that repairs it must not depend on it)."""

    entries, _ = read_ingest_log(source)
    same = [e for e in entries if str(e["edition"]) == str(edition)]
    older = sorted((e for e in entries if str(e["edition"]) < str(edition)), key=lambda e: str(e["edition"]))
    for e in [*reversed(same), *reversed(older)]:
        info = snapshot_info(source, str(e["edition"]), e["snapshot_id"])
        if info is not None and not snapshot_damage(info):
            return PreviousSnapshot(info)
    return None


def validate_source(
    source: str, cfg: dict, registry: Registry, tidy: pd.DataFrame, extras: dict[str, pd.DataFrame], docs_dir=None
) -> list[ValidationReport]:
    """Run the source's suites, each with the checks GX does not express (the generic change and
    coverage checks on the main table, and the source's own).

    `docs_dir`: keep every validation for the GX Data Docs of that folder."""
    spec = source_spec(source, cfg)
    n = len(registry.ids)
    params = {"registry_city_ids": registry.ids, "registry_count": n, **spec.suite_params(cfg, registry)}
    previous = previous_snapshot(source, str(cfg.get("edition")))
    reports = []
    for suite in spec.suites_for(cfg):
        table = wide(tidy, registry) if suite.table == "main" else extras.get(suite.table)
        if table is None:
            raise PipelineError(
                f"source {source}: suite {suite.suite} checks the table {suite.table!r}, "
                f"which the source did not produce (tables: {sorted(extras)})"
            )
        report = _run_suite(
            table,
            load_suite(suite.suite, spec.suites_dir),
            source=source,
            key_column=suite.key_column,
            params=params,
            docs_dir=docs_dir,
            run_name=f"{source} edition {cfg.get('edition')} ({cfg.get('mode', 'offline')})",
        )
        if suite.table == "main":
            report.results += _generic_checks(tidy, registry, previous, cfg)
        report.results += spec.extra_checks(suite, cfg, registry, tidy, extras, previous)
        reports.append(report)
    return reports


def compared(tidy: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """city_id, indicator -> old, new, page: the values both the previous ingest and this one have
    (`page`: where this ingest read the value)."""
    if previous is None or previous.empty or "indicator" not in tidy.columns or "indicator" not in previous.columns:
        empty = pd.MultiIndex.from_arrays([[], []], names=["city_id", "indicator"])
        return pd.DataFrame({"old": [], "new": [], "page": []}, index=empty)
    old = previous.set_index(["city_id", "indicator"])
    new = tidy.set_index(["city_id", "indicator"])
    page = new["location"] if "location" in new.columns else pd.Series("", index=new.index)
    both = pd.concat({"old": old["value"], "new": new["value"], "page": page}, axis=1, join="inner")
    if "status" in old.columns and "status" in new.columns:
        # a value that became real or a proxy where it was illustrative (or the other way) is other
        # data, not the same figure moved: only values of the same status are compared
        same = pd.concat({"o": old["status"], "n": new["status"]}, axis=1, join="inner")
        both = both[(same["o"] == same["n"]).reindex(both.index, fill_value=False)]
    return both.dropna(subset=["old", "new"])


def unit_scale_changes(both: pd.DataFrame, low: float = 50.0, high: float = 200.0) -> list[str]:
    """Values that moved by a factor of about 100 (50 to 200, either way) since the previous ingest:
    a unit or scale slip (a share typed as a fraction where percent is expected), not news."""
    b = both[(both["old"] != 0) & (both["new"] != 0)]
    ratio = (b["new"] / b["old"]).abs()
    hit = b[((ratio >= low) & (ratio <= high)) | ((ratio >= 1 / high) & (ratio <= 1 / low))]
    return [f"{c}:{i} {r.old:g}->{r.new:g} (x{r.new / r.old:.3g})" for (c, i), r in hit.iterrows()]


def layout_changes(both: pd.DataFrame, cfg: dict) -> list[str]:
    """Indicators where most cities moved at once and the cities' order changed: a page whose
    columns moved (two headers swapped), not a year of news. Thresholds: `layout_change` in the
    source's configuration (defaults below)."""
    p = {
        "move": 0.10,
        "moved_share": 0.5,
        "max_rank_correlation": 0.6,
        "min_cities": 8,
        **(cfg.get("layout_change") or {}),
    }
    out = []
    # per indicator and page: a layout change moves every city of one page (the ranking), not the
    # cities read from pages of their own
    for (ind, _page), g in both.groupby([both.index.get_level_values("indicator"), both["page"].fillna("")]):
        if len(g) < p["min_cities"]:
            continue
        base = g["old"].abs().where(g["old"].abs() > 0)
        share = float((((g["new"] - g["old"]).abs() / base) > p["move"]).mean())
        rho = g["old"].rank().corr(g["new"].rank())
        if share >= p["moved_share"] and (pd.isna(rho) or rho < p["max_rank_correlation"]):
            out.append(
                f"{ind}: {share:.0%} of {len(g)} cities moved by more than {p['move']:.0%}, rank correlation "
                f"with the previous ingest {rho:.2f} (a column moved or was relabelled?)"
            )
    return out


def _generic_checks(tidy: pd.DataFrame, registry: Registry, previous: PreviousSnapshot | None, cfg: dict) -> list:
    """Against the previous ingest: values that moved (warning), a unit or scale slip and a layout
    change (errors); and every registry city present (warning)."""
    prev_table = previous.read() if previous else None
    moved = change_check("", tidy, prev_table, float(cfg.get("change_warning_share", 0.5)))
    both = compared(tidy, prev_table)
    seen = previous.snapshot_id if previous else None
    out = [
        extra_check("change_vs_previous_snapshot", "warning", moved, column="value", observed=seen),
        extra_check("unit_scale_unchanged", "error", unit_scale_changes(both), column="value", observed=seen),
        extra_check("layout_unchanged", "error", layout_changes(both, cfg), column="value", observed=seen),
    ]
    if "indicator" in tidy.columns:
        present = set(tidy.dropna(subset=["value"])["city_id"])
        missing = [c for c in registry.ids if c not in present]
        out.append(extra_check("every_registry_city_present", "warning", missing, column="city_id"))
    return out


def extra_summary(source: str, extras: dict[str, pd.DataFrame], cfg: dict | None = None) -> str | None:
    """Markdown a data engineer should see beside the data-quality summary (run artifacts)."""
    return source_spec(source, cfg).summary_markdown(extras)


def snapshot_source(
    source: str,
    cfg: dict,
    tidy: pd.DataFrame,
    extras: dict,
    raws: list[dict],
    reports: list[ValidationReport],
    vintage: dict | None = None,
    mode: str | None = None,
    run_id: str | None = None,
) -> dict:
    """Write the validated tables as a snapshot of the edition and log the ingest (the log, not the
    snapshot's age, decides what is latest)."""
    failed = [r for r in reports if not r.success]
    if failed:
        raise PipelineError(f"refusing to snapshot {source}: suite {failed[0].suite} failed")

    require_current_format()  # never mix relative paths into a home written with absolute ones
    spec = source_spec(source, cfg)
    edition = str(cfg.get("edition"))
    provenance = {
        "producer": source,
        "parser_version": spec.parser_version,
        "origin": cfg.get("origin") or {},
        "inputs": raws,
        "validated_at": utc_now(),
        "validation": [r.as_dict() for r in reports],
    }
    snap = write_snapshot(source, edition, tidy, provenance, extras=extras)
    vintage = vintage or {"edition": edition, "expected": edition, "found": edition, "ok": True}
    entry = append_ingest(
        source,
        {
            "snapshot_id": snap["snapshot_id"],
            "edition": edition,
            "vintage": vintage.get("found"),
            "expected_vintage": vintage.get("expected"),
            "vintage_ok": bool(vintage.get("ok")),
            "vintage_notes": vintage.get("notes") or [],
            "fallback_values": vintage.get("fallback_values") or [],
            "mode": mode or (raws[0]["mode"] if raws else None),
            "run_id": run_id,
            "accessed_at": min((r["fetched_at"] for r in raws), default=None),
        },
    )
    return {**snap, "ingest": entry}


def ingest(
    source: str, cfg: dict, mode: str, registry: Registry, progress=None, allow_vintage_fallback: bool = False
) -> Ingested:
    """The whole ingestion of one source; raises DataQualityError when an `error` check fails."""
    cfg = without_secrets({**cfg, "mode": mode}, allow_vintage_fallback)
    fetched = fetch_and_parse(source, cfg, mode, registry, progress)
    vintage = check_vintage(source, cfg, fetched, allow_vintage_fallback)
    tidy, extras = tidy_source(source, cfg, registry, fetched)
    reports = validate_source(source, cfg, registry, tidy, extras)
    for r in reports:
        r.raise_for_errors()
    snap = snapshot_source(source, cfg, tidy, extras, fetched.raws, reports, vintage=vintage, mode=mode)
    return Ingested(
        source=source,
        edition=str(cfg.get("edition")),
        tidy=tidy,
        extras=extras,
        raws=fetched.raws,
        reports=reports,
        snapshot=snap,
        requests_made=fetched.requests_made,
        vintage=vintage,
    )
