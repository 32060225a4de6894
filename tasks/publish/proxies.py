"""Proxies fed by a source: where an indicator's own source has no real value, a figure another
source supplies stands in, transformed and labelled `proxy` with what it stands for (the
methodology's `proxy:` of each indicator; `scoring.methodology.ProxySource`).

Pure pandas on the long table the release gathers (`city_id, indicator, value, unit, edition,
name_in_source, location, source, status, stands_for, transform`, optionally `boundary`)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from scoring import Methodology
from scoring.methodology import Indicator, ProxySource
from tasks.errors import PipelineError
from tasks.publish.categories import concat

_SCALES = {"": 1.0, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_MONEY = re.compile(r"^(?:(\d[\d,]*)\s+)?(thousand|million|billion)?\s*([A-Z]{3})$")


def money_unit(unit: str) -> tuple[float, str]:
    """'100 million CNY' -> (1e8, 'CNY'); 'billion EUR' -> (1e9, 'EUR'); 'thousand USD' -> (1e3, 'USD')."""
    m = _MONEY.match(str(unit).strip())
    if not m:
        raise ValueError(f"unit {unit!r} is not an amount of money (expected e.g. '100 million CNY', 'billion EUR')")
    count = float(m.group(1).replace(",", "")) if m.group(1) else 1.0
    return count * _SCALES[m.group(2) or ""], m.group(3)


def _in_us_dollars(figures: pd.DataFrame, ind: Indicator, p: ProxySource, m: Methodology) -> tuple[list, list]:
    """Amounts of money (`unit` as published: '100 million CNY') in billion US$ at the configured
    rate of each figure's own year, and the transform each one says."""
    values, transforms = [], []
    for r in figures.itertuples(index=False):
        year = str(r.edition)[:4]
        try:
            scale, currency = money_unit(r.unit)
        except ValueError as exc:
            raise PipelineError(f"proxy of {ind.id} from {p.source}:{p.indicator}, city {r.city_id}: {exc}") from None
        rate = m.per_usd(currency, year)
        if rate is None:
            raise PipelineError(
                f"proxy of {ind.id} from {p.source}:{p.indicator}, city {r.city_id}: no exchange rate for {currency} "
                f"in {year}; add it under proxies.exchange_rates.per_usd.{currency}.{year} of {m.path or 'the methodology'}"
            )
        amount = float(r.value)
        values.append(amount * scale / rate / 1e9)
        shown = f"{amount:,.0f}" if amount.is_integer() else f"{amount:,.2f}"
        converted = (
            f"{shown} {r.unit} ({year}) in billion US$"
            if currency == "USD"
            else f"{shown} {r.unit} ({year}) converted at {rate:.4f} {currency} per US$ ({year}) to billion US$"
        )
        transforms.append(f"{p.transform}; {converted}" if p.transform else converted)
    return values, transforms


def _proxy_rows(figures: pd.DataFrame, ind: Indicator, p: ProxySource, m: Methodology) -> pd.DataFrame:
    """The proxy source's figures as values of `ind`, by column: one row per city, each labelled
    with what it stands for (formatted once per boundary, name and year) and how it was transformed."""
    years = figures["edition"].astype(str).str[:4].tolist()
    names = figures["name_in_source"].tolist()
    boundaries = (
        figures["boundary"].astype(object).fillna("").astype(str).tolist()
        if "boundary" in figures
        else [""] * len(figures)
    )
    said: dict[tuple, str] = {}
    stands_for = []
    for key in zip(boundaries, names, years, strict=True):
        if key not in said:
            b, name, year = key
            said[key] = p.stands_for.format(boundary=b or "city", name=name, year=year) or (
                f"{ind.name_en}: {p.source} {p.indicator}"
            )
        stands_for.append(said[key])
    values: object = figures["value"].to_numpy(dtype=float) * p.multiply
    transform: object = p.transform
    unit = ind.unit
    if p.money:
        values, transform = _in_us_dollars(figures, ind, p, m)
        unit = "billion US$"
    return pd.DataFrame(
        {
            "city_id": figures["city_id"].to_numpy(),
            "indicator": ind.id,
            "value": values,
            "unit": unit,
            "edition": figures["edition"].to_numpy(),
            "name_in_source": names,
            "location": figures["location"].to_numpy(),
            "source": p.source,
            "status": "proxy",
            "stands_for": stands_for,
            "transform": transform,
            "graded": True,
        }
    )


def apply_proxies(own: pd.DataFrame, everything: pd.DataFrame, m: Methodology) -> pd.DataFrame:
    """`own`: each indicator's rows from its own source; `everything`: gathered rows holding the
    proxy sources' figures (every gathered row, or those of the proxies' sources and indicators).
    Returns `own` with the proxies in place.

    per_city: a city without a real or proxy value of its own (missing, or illustrative) takes the
    proxy where the proxy source has one; city figures always win.
    when_no_real_value: when the own source has no real value for any city, the proxy stands for the
    whole indicator (another unit: never mixed with the own values); cities without one are missing."""
    # one pass, one concatenation: each indicator's proxies touch only its own rows
    dropped = np.zeros(len(own), dtype=bool)
    added: list[pd.DataFrame] = []
    for ind in m.indicators:
        p = ind.proxy
        if p is None:
            continue
        figures = everything[
            (everything["source"] == p.source) & (everything["indicator"] == p.indicator) & everything["value"].notna()
        ]
        mine = (own["indicator"] == ind.id).to_numpy()
        rows = own[mine]
        kept = rows["value"].notna() & rows["status"].isin(["real", "proxy"])
        if p.use == "when_no_real_value":
            if (rows["value"].notna() & (rows["status"] == "real")).any() or figures.empty:
                continue
            proxies = _proxy_rows(figures, ind, p, m)
            absent = rows[~rows["city_id"].isin(proxies["city_id"])].assign(
                value=np.nan, status="missing", stands_for="", transform=""
            )
            dropped |= mine
            added += [proxies, absent]
            continue
        figures = figures[~figures["city_id"].isin(rows.loc[kept, "city_id"])]
        if figures.empty:
            continue
        proxies = _proxy_rows(figures, ind, p, m)
        dropped |= mine & own["city_id"].isin(proxies["city_id"]).to_numpy()
        added.append(proxies)
    if not added:
        return own
    return concat([own[~dropped] if dropped.any() else own, *added])  # the gathered texts stay categories
