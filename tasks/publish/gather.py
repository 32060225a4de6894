"""Gather the inputs of a release: the latest validated ingest of every source of one edition.

Pure reading: the snapshot store and the sources' configuration; nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from scoring import IndexResult, Methodology, score_index
from tasks.errors import PipelineError, VintageMismatch
from tasks.memory import release_freed_memory
from tasks.publish.categories import filled, frame_with_categories, is_categorical, sorted_categories, with_values
from tasks.publish.proxies import apply_proxies
from tasks.registry.cities import Registry
from tasks.settings import data_home, sources_path
from tasks.sources import EditionError, all_sources, load_sources_raw, resolve_source, vintage_policy
from tasks.sources.base import STATUS_COLUMNS
from tasks.store.storage import (
    ingested_editions,
    latest_ingest,
    read_snapshot,
    read_snapshot_arrow,
    verified_snapshot_path,
)

# the columns of a snapshot table the release reads (its other columns stay in the snapshot)
GATHERED_COLUMNS = [
    "city_id",
    "indicator",
    "value",
    "unit",
    "edition",
    "name_in_source",
    "location",
    *STATUS_COLUMNS,
    "boundary",
]


class SnapshotTables(Mapping[str, pd.DataFrame]):
    """source -> its snapshot's whole table, read when asked for (what a source adds to the release
    reads it): holding every table for the whole publication cost more memory than the release's
    own long table at 100,000 cities."""

    def __init__(self, snapshots: dict[str, dict]):
        self._snapshots = snapshots

    def __getitem__(self, source: str) -> pd.DataFrame:
        return read_snapshot(self._snapshots[source])

    def __contains__(self, source: object) -> bool:  # without reading the table (Mapping's default would)
        return source in self._snapshots

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshots)

    def __len__(self) -> int:
        return len(self._snapshots)


@dataclass
class Inputs:
    values: pd.DataFrame  # registry city x indicator
    snapshots: dict[str, dict]  # source -> snapshot provenance
    tables: Mapping[str, pd.DataFrame]  # source -> its snapshot's table (what a source adds to the release reads it)
    provenance: pd.DataFrame  # city_id, indicator, source, name_in_source, location, edition, status… (categorical)
    edition: str = ""
    ingests: dict[str, dict] = field(default_factory=dict)  # source -> its ingest-log entry
    fallbacks: list[dict] = field(default_factory=list)  # sources whose vintage is not the policy's


def indicator_sources(methodology: Methodology) -> list[str]:
    """Sources the methodology's indicators (and their proxies) come from, in order of first use."""
    return list(dict.fromkeys([i.source for i in methodology.indicators] + methodology.proxy_sources()))


def metadata_sources() -> list[str]:
    """Configured sources that describe cities without feeding an indicator (GaWC)."""
    return [n for n, spec in all_sources().items() if not spec.feeds_indicators]


def _expected_vintage(source: str, edition: str, cadence: str) -> str:
    """What the source's edition policy expects for `edition` now (said when an ingest is missing or
    found another vintage). A configuration error is raised as it is, never hidden in this text."""
    raw = load_sources_raw()
    if source not in raw:
        return f"unknown: {source} is no longer configured in {sources_path()}"
    try:
        return vintage_policy(resolve_source(source, raw[source], edition, cadence)).describe()
    except EditionError as exc:
        return f"none: {exc.detail}"


def newest_ingested_edition(sources: list[str]) -> str | None:
    eds = sorted({e for s in sources for e in ingested_editions(s)})
    return eds[-1] if eds else None


def gather_inputs(
    registry: Registry,
    methodology: Methodology,
    edition: str | None = None,
    as_of: str | None = None,
    allow_vintage_fallback: bool = False,
    cadence: str = "annual",
) -> Inputs:
    """The latest ingest of edition `edition` (by ingest order, up to `as_of`) of every source the
    methodology names, as one indicator table.

    A source with no ingest of the edition, or whose ingested vintage is not what its policy
    expects, is refused (one line per source) unless `allow_vintage_fallback`: then the latest
    ingest of the newest earlier edition is used and the fallback is recorded."""
    sources = indicator_sources(methodology)
    edition = str(edition or newest_ingested_edition(sources) or "")
    if not edition:
        raise PipelineError(
            f"no validated snapshot of any source under {data_home() / 'snapshots'}: run `talent-index refresh` first"
        )
    snaps: dict[str, dict] = {}
    ingests: dict[str, dict] = {}
    frames: list[pd.DataFrame] = []
    fallbacks: list[dict] = []
    problems: list[str] = []
    for source in sources + [m for m in metadata_sources() if m not in sources]:
        required = source in sources
        found = latest_ingest(source, edition=edition, as_of=as_of)
        # what this edition's ingest expected (its settings may have differed from the policy resolved
        # now: online, without a secret), before `found` may become an older edition's ingest below
        own_expected = found[0].get("expected_vintage") if found else None
        reason = None
        if found is None:
            older = list(_older_editions(source, edition))
            reason = f"no ingest of edition {edition}" + (
                f" (ingested editions: {', '.join(older)})" if older else " (never ingested)"
            )
            if older and allow_vintage_fallback:
                found = latest_ingest(source, edition=older[-1], as_of=as_of)
        elif not found[0].get("vintage_ok", True):
            reason = f"the ingest of edition {edition} found vintage {found[0].get('vintage')}"
        if reason is not None:
            expected = own_expected or _expected_vintage(source, edition, cadence)
            got = found[0].get("vintage") if found else None
            if found is None or not allow_vintage_fallback:
                if required or found is not None:  # a metadata source may be missing altogether
                    problems.append(f"source {source}: expected vintage {expected}, found {got or 'none'} — {reason}")
                continue
            fallbacks.append(
                {
                    "source": source,
                    "expected": expected,
                    "found": got,
                    "edition_used": str(found[0]["edition"]),
                    "reason": reason,
                }
            )
        assert found is not None  # every path without an ingest left through `continue` above
        entry, info = found
        snaps[source], ingests[source] = info, entry
        for group in entry.get("fallback_values") or []:  # values the source's data itself holds from older vintages
            values = group["values"]
            fallbacks.append(
                {
                    "source": source,
                    "expected": entry.get("expected_vintage") or _expected_vintage(source, edition, cadence),
                    "found": str(group.get("vintage", "")),
                    "edition_used": str(group.get("edition_used", "")),
                    "reason": f"{group['reason']}: {', '.join(values[:5])}{' …' if len(values) > 5 else ''}",
                    "values": values,
                }
            )
        if required:
            table = read_snapshot_arrow(info, columns=GATHERED_COLUMNS)
            source_column = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(table.num_rows, dtype=np.int32)), pa.array([source], pa.large_string())
            )
            frames.append(table.append_column("source", source_column))
        else:
            verified_snapshot_path(info)  # a damaged snapshot stops the release here, not halfway
    if problems:
        raise VintageMismatch(
            f"edition {edition} cannot be published as labelled (use --allow-vintage-fallback "
            "to publish with the fallbacks listed):\n  " + "\n  ".join(problems)
        )
    everything = frame_with_categories(frames)  # texts as categories: the long table's memory is its texts
    in_registry = everything["city_id"].isin(registry.ids)
    if not in_registry.all():  # a copy of the long table only when some rows go
        everything = everything[in_registry].copy()
    # graded: the source said how good the value is (else it is taken as real; the bundled sample's
    # values.csv grades those in a sample release's coverage)
    everything["graded"] = everything["status"].notna() if "status" in everything else False
    for col in [*STATUS_COLUMNS, "boundary"]:  # a source that does not grade its values publishes real ones
        default = "real" if col == "status" else ""
        everything[col] = filled(everything[col], default) if col in everything else default
    source_of = {i.id: i.source for i in methodology.indicators}
    # each indicator's rows from its own source, and the figures proxies may read; the long table
    # goes before the proxies are added (not three copies of it at once)
    mine = everything["indicator"].map(source_of).astype(object) == everything["source"].astype(object)
    proxied = [i.proxy for i in methodology.indicators if i.proxy is not None]
    pool = everything[
        everything["source"].isin({p.source for p in proxied})
        & everything["indicator"].isin({p.indicator for p in proxied})
    ]
    own = everything if mine.all() else everything[mine]
    del everything, mine
    tidy = apply_proxies(own, pool, methodology)
    del own, pool
    missing = sorted(set(source_of) - set(tidy["indicator"]))
    if missing:
        raise PipelineError(
            "indicators not supplied by the source the methodology names "
            f"(indicator: source): { ({k: source_of[k] for k in missing}) }"
        )
    allows = {i: methodology.allows_proxy(i) for i in tidy["indicator"].unique()}
    refused = (tidy["status"] == "proxy") & ~tidy["indicator"].astype(object).map(allows).astype(bool)
    tidy.loc[refused, "value"] = float("nan")  # treated as missing: the missing-values policy applies
    if refused.any():
        tidy["status"] = with_values(tidy["status"], ["proxy refused"])
        tidy.loc[refused, "status"] = "proxy refused"
    emptied = sorted(set(tidy.loc[refused, "indicator"]) - set(tidy.loc[tidy["value"].notna(), "indicator"]))
    if emptied:
        raise PipelineError(
            f"indicator {', '.join(emptied)}: every value is a proxy and the methodology refuses proxies for it "
            f"({methodology.path or 'methodology'}: proxies): allow them, or supply real values"
        )
    values = _city_by_indicator(tidy, registry.ids, list(source_of))
    prov = tidy[["city_id", "indicator", "source", "edition", "name_in_source", "location", *STATUS_COLUMNS, "graded"]]
    del tidy
    prov = prov.assign(**{c: sorted_categories(prov[c]) for c in prov.columns if c != "graded"})
    release_freed_memory()  # the gathered snapshots and their copies: not under the release's peak
    return Inputs(
        values=values,
        snapshots=snaps,
        tables=SnapshotTables(snaps),
        provenance=prov.reset_index(drop=True),
        edition=edition,
        ingests=ingests,
        fallbacks=fallbacks,
    )


def _city_by_indicator(tidy: pd.DataFrame, cities: list[str], indicators: list[str]) -> pd.DataFrame:
    """city_id x indicator: each pair's first value that is not missing, in the order of `tidy`'s
    rows (what `pivot_table(aggfunc="first")` gives, without a copy of the long table's texts)."""
    rows = _positions(pd.Index(cities), tidy["city_id"])
    cols = _positions(pd.Index(indicators), tidy["indicator"])
    value = tidy["value"].to_numpy(dtype=float)
    keep = (rows >= 0) & (cols >= 0) & ~np.isnan(value)
    cell, first = np.unique(rows[keep] * len(indicators) + cols[keep], return_index=True)
    matrix = np.full((len(cities), len(indicators)), np.nan)
    matrix.flat[cell] = value[keep][first]
    return pd.DataFrame(matrix, index=pd.Index(cities, name="city_id"), columns=pd.Index(indicators, name="indicator"))


def _positions(index: pd.Index, s: pd.Series) -> np.ndarray:
    """Each value's position in `index` (-1 where absent), looked up once per category."""
    if is_categorical(s):
        found = index.get_indexer(s.cat.categories)
        return np.where(s.cat.codes.to_numpy() >= 0, found[s.cat.codes.to_numpy()], -1)
    return index.get_indexer(s)


def _older_editions(source: str, edition: str) -> list[str]:
    return [e for e in ingested_editions(source) if e < edition]


def score(inputs: Inputs, registry: Registry, methodology: Methodology) -> IndexResult:
    return score_index(inputs.values, registry.table, methodology)
