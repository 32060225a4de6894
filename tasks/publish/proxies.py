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

_SCALES = {"": 1.0, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_MONEY = re.compile(r"^(?:(\d[\d,]*)\s+)?(thousand|million|billion)?\s*([A-Z]{3})$")


def money_unit(unit: str) -> tuple[float, str]:
    """'100 million CNY' -> (1e8, 'CNY'); 'billion EUR' -> (1e9, 'EUR'); 'thousand USD' -> (1e3, 'USD')."""
    m = _MONEY.match(str(unit).strip())
    if not m:
        raise ValueError(f"unit {unit!r} is not an amount of money (expected e.g. '100 million CNY', 'billion EUR')")
    count = float(m.group(1).replace(",", "")) if m.group(1) else 1.0
    return count * _SCALES[m.group(2) or ""], m.group(3)


def _proxy_rows(figures: pd.DataFrame, ind: Indicator, p: ProxySource, m: Methodology) -> pd.DataFrame:
    """The proxy source's figures as values of `ind`, each labelled with what it stands for and how
    it was transformed."""
    if not p.money:
        return _plain_proxy_rows(figures, ind, p)
    rows = []
    for r in figures.itertuples(index=False):
        year = str(r.edition)[:4]
        boundary = getattr(r, "boundary", "") or "city"
        value = float(r.value) * p.multiply
        transform = p.transform
        unit = ind.unit
        if p.money:
            try:
                scale, currency = money_unit(r.unit)
            except ValueError as exc:
                raise PipelineError(
                    f"proxy of {ind.id} from {p.source}:{p.indicator}, city {r.city_id}: {exc}"
                ) from None
            rate = m.per_usd(currency, year)
            if rate is None:
                raise PipelineError(
                    f"proxy of {ind.id} from {p.source}:{p.indicator}, city {r.city_id}: no exchange rate for {currency} "
                    f"in {year}; add it under proxies.exchange_rates.per_usd.{currency}.{year} of {m.path or 'the methodology'}"
                )
            value = float(r.value) * scale / rate / 1e9
            unit = "billion US$"
            amount = float(r.value)
            shown = f"{amount:,.0f}" if amount.is_integer() else f"{amount:,.2f}"
            converted = (
                f"{shown} {r.unit} ({year}) in billion US$"
                if currency == "USD"
                else f"{shown} {r.unit} ({year}) converted at {rate:.4f} {currency} per US$ ({year}) to billion US$"
            )
            transform = f"{transform}; {converted}" if transform else converted
        rows.append(
            {
                "city_id": r.city_id,
                "indicator": ind.id,
                "value": value,
                "unit": unit,
                "edition": r.edition,
                "name_in_source": r.name_in_source,
                "location": r.location,
                "source": p.source,
                "status": "proxy",
                "stands_for": p.stands_for.format(boundary=boundary, name=r.name_in_source, year=year)
                or f"{ind.name_en}: {p.source} {p.indicator}",
                "transform": transform,
                "graded": True,
            }
        )
    return pd.DataFrame(rows)


def _plain_proxy_rows(figures: pd.DataFrame, ind: Indicator, p: ProxySource) -> pd.DataFrame:
    """`_proxy_rows` of a figure in the indicator's own kind of unit (a country's physicians for its
    city's), by column: one row per city, what it stands for formatted once per country and year."""
    years = figures["edition"].astype(str).str[:4].tolist()
    names = figures["name_in_source"].tolist()
    boundaries = figures["boundary"].fillna("").astype(str).tolist() if "boundary" in figures else [""] * len(figures)
    said: dict[tuple, str] = {}
    stands_for = []
    for key in zip(boundaries, names, years, strict=True):
        if key not in said:
            b, name, year = key
            said[key] = p.stands_for.format(boundary=b or "city", name=name, year=year) or (
                f"{ind.name_en}: {p.source} {p.indicator}"
            )
        stands_for.append(said[key])
    return pd.DataFrame(
        {
            "city_id": figures["city_id"].to_numpy(),
            "indicator": ind.id,
            "value": figures["value"].to_numpy(dtype=float) * p.multiply,
            "unit": ind.unit,
            "edition": figures["edition"].to_numpy(),
            "name_in_source": names,
            "location": figures["location"].to_numpy(),
            "source": p.source,
            "status": "proxy",
            "stands_for": stands_for,
            "transform": p.transform,
            "graded": True,
        }
    )


def apply_proxies(own: pd.DataFrame, everything: pd.DataFrame, m: Methodology) -> pd.DataFrame:
    """`own`: each indicator's rows from its own source; `everything`: every gathered row (the
    proxy sources' figures among them). Returns `own` with the proxies in place.

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
    return pd.concat([own[~dropped], *added], ignore_index=True)
