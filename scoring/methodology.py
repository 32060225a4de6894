"""The method as configuration: load and check `scoring/methodology.yaml`.

The file is read into typed models (`MethodologyFile`, pydantic: a wrong type, a value out of its
choices or an unknown key is one line naming the file, line and key path), then into the frozen
`Methodology` the scoring reads."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from scoring.yamlconfig import YAML_LOADER, ConfigFileError, explain, load_yaml

DEFAULT_PATH = Path(__file__).with_name("methodology.yaml")
__all__ = ["YAML_LOADER", "Methodology", "MethodologyError", "load_methodology"]


class MethodologyError(ConfigFileError):
    """The methodology file is not what the scoring expects."""


@dataclass(frozen=True)
class ProxySource:
    """Where an indicator's proxy comes from: a figure another source supplies (`indicator` of
    `source`), transformed and labelled. `use`: `per_city` (a city without a real or proxy value of
    its own takes the proxy; same unit), or `when_no_real_value` (a figure of another unit: it stands
    for the whole indicator, and only when the indicator's own source supplied no real value; cities
    without it are missing). `multiply`: a unit change (per 1,000 x 10 = per 10,000); `money`: the
    figure is an amount in the currency its unit names, converted to billion US$ at `exchange_rates`."""

    source: str
    indicator: str
    use: str = "per_city"
    multiply: float = 1.0
    money: bool = False
    stands_for: str = ""  # may name {boundary}, {name}, {year}
    transform: str = ""
    decimals: int | None = None  # printed decimals of a figure of another unit (None: the indicator's)


@dataclass(frozen=True)
class Indicator:
    id: str
    dimension: str
    name_en: str
    name_zh: str
    direction: int  # +1 benefit, -1 cost
    unit: str
    source: str
    proxies: bool | None = None  # None: the methodology's default
    proxy: ProxySource | None = None  # a proxy fed by another source
    decimals: int = 2  # decimals the report prints (`decimals:`, else by unit: see default_decimals)

    def shown(self, value: float, status: str = "real") -> str:
        """The value as the report prints it: thousands separators and the indicator's decimals. A
        proxy may be of another unit (a GDP for a light sum, a rank score for a count): it prints
        with its proxy's `decimals`, else with four significant digits."""
        if value is None or value != value:
            return "—"
        if status == "proxy":
            if self.proxy is not None and self.proxy.decimals is not None:
                return f"{value:,.{self.proxy.decimals}f}"
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        return f"{value:,.{self.decimals}f}"


COUNT_UNITS = ("companies", "students", "people", "count")


def default_decimals(unit: str) -> int:
    """Counts and amounts of money per month print as integers; indices, shares and ratios with 2."""
    u = unit.strip().lower()
    return 0 if u in COUNT_UNITS or u.startswith("currency") else 2


@dataclass(frozen=True)
class Dimension:
    id: str
    name_en: str
    name_zh: str
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True)
class Methodology:
    version: str
    edition: str
    scale_low: float
    scale_high: float
    entropy_input: str
    zero_rule: str
    epsilon: float
    topsis_normalization: str
    weights_mode: str
    published_weights: dict[str, float]
    missing_policy: str
    dimensions: tuple[Dimension, ...]
    sha256: str = ""
    path: str = ""
    overrides: dict = field(default_factory=dict)
    proxies_default: bool = True
    exchange_rates: dict = field(default_factory=dict)  # currency -> year -> units per US$
    exchange_rates_source: str = ""

    @property
    def indicators(self) -> list[Indicator]:
        return [i for d in self.dimensions for i in d.indicators]

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]

    def allows_proxy(self, indicator_id: str) -> bool:
        """Whether a proxy value (a figure of another scope or definition) may stand for this indicator;
        a refused proxy is treated as missing (imputed or dropped by the missing-values policy)."""
        own = self.indicator(indicator_id).proxies
        return self.proxies_default if own is None else own

    def proxy_sources(self) -> list[str]:
        """Sources that feed an indicator's proxy (in order of first use)."""
        return list(dict.fromkeys(i.proxy.source for i in self.indicators if i.proxy is not None))

    def per_usd(self, currency: str, year: str) -> float | None:
        """Units of `currency` per US$ in `year` (1 for US$), None when not configured."""
        if currency == "USD":
            return 1.0
        return (self.exchange_rates.get(currency) or {}).get(str(year))

    def indicator(self, indicator_id: str) -> Indicator:
        for i in self.indicators:
            if i.id == indicator_id:
                return i
        raise KeyError(indicator_id)

    def with_choices(self, **changes) -> Methodology:
        """A copy with some choices changed (recorded in `overrides`, so a release says so)."""
        allowed = {
            "entropy_input",
            "zero_rule",
            "epsilon",
            "topsis_normalization",
            "weights_mode",
            "missing_policy",
            "published_weights",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise MethodologyError(f"cannot override {sorted(unknown)}; allowed: {sorted(allowed)}")
        new = dataclasses.replace(self, overrides={**self.overrides, **changes}, **changes)
        _check(new, self.path or "<overrides>")
        return new

    def describe(self) -> dict:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "entropy_input": self.entropy_input,
            "zero_rule": self.zero_rule,
            "epsilon": self.epsilon,
            "topsis_normalization": self.topsis_normalization,
            "weights_mode": self.weights_mode,
            "missing_policy": self.missing_policy,
            "proxies": {i.id: self.allows_proxy(i.id) for i in self.indicators if i.proxies is not None}
            | {"default": self.proxies_default},
            "scale": [self.scale_low, self.scale_high],
            "overrides": dict(self.overrides),
        }


def _check(m: Methodology, where: str) -> None:
    def bad(msg: str):
        raise MethodologyError(f"{where}: {msg}")

    if m.entropy_input not in ("raw", "minmax"):
        bad(f"entropy.input must be 'raw' or 'minmax', found {m.entropy_input!r}")
    if m.zero_rule not in ("zero", "shift", "any_zero_full_information"):
        bad(f"entropy.zero_rule must be zero|shift|any_zero_full_information, found {m.zero_rule!r}")
    if m.topsis_normalization not in ("minmax", "vector"):
        bad(f"topsis.normalization must be 'minmax' or 'vector', found {m.topsis_normalization!r}")
    if m.weights_mode not in ("published", "computed"):
        bad(f"dimension_weights.mode must be 'published' or 'computed', found {m.weights_mode!r}")
    if m.missing_policy not in ("impute_median", "drop_city"):
        bad(f"missing_values.policy must be impute_median|drop_city, found {m.missing_policy!r}")
    if not m.scale_low < m.scale_high:
        bad(f"scale.low ({m.scale_low}) must be below scale.high ({m.scale_high})")
    dims = [d.id for d in m.dimensions]
    if len(set(dims)) != len(dims):
        bad(f"duplicate dimension ids in {dims}")
    ids = [i.id for i in m.indicators]
    if len(set(ids)) != len(ids):
        bad("duplicate indicator ids")
    if set(m.published_weights) != set(dims):
        bad(f"dimension_weights.published names {sorted(m.published_weights)}, dimensions are {sorted(dims)}")
    total = sum(m.published_weights.values())
    if abs(total - 1.0) > 0.011:
        bad(f"dimension_weights.published sum to {total:.4f}, expected 1")


# ---------------------------------------------------------------------------- the file's models
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ProxyPolicy = Literal["allowed", "refused"]


class ProxyModel(_Strict):
    source: str = Field(min_length=1)
    indicator: str = Field(min_length=1)
    use: Literal["per_city", "when_no_real_value"] = "per_city"
    multiply: float = 1.0
    money: StrictBool = False
    stands_for: str = ""
    transform: str = ""
    decimals: int | None = Field(default=None, ge=0, le=6)


class IndicatorModel(_Strict):
    id: str = Field(min_length=1)
    name_en: str
    name_zh: str = ""
    direction: Literal["+", "-", "\u2212"]
    unit: str = ""
    source: str = Field(min_length=1)
    proxies: ProxyPolicy | None = None
    proxy: ProxyModel | None = None
    decimals: int | None = Field(default=None, ge=0, le=6)  # printed decimals (default by unit)

    @field_validator("unit", mode="before")
    @classmethod
    def _unit_text(cls, v):
        return "" if v is None else str(v)


class DimensionModel(_Strict):
    id: str = Field(min_length=1)
    name_en: str
    name_zh: str = ""
    indicators: list[IndicatorModel] = Field(min_length=1)


class ScaleModel(_Strict):
    low: float
    high: float


class EntropyModel(_Strict):
    input: Literal["raw", "minmax"]
    zero_rule: Literal["zero", "shift", "any_zero_full_information"]
    epsilon: float = Field(default=1e-4, gt=0)


class TopsisModel(_Strict):
    normalization: Literal["minmax", "vector"]


class WeightsModel(_Strict):
    mode: Literal["published", "computed"]
    published: dict[str, float]


class MissingModel(_Strict):
    policy: Literal["impute_median", "drop_city"]


class RatesModel(_Strict):
    source: str = Field(min_length=1)
    per_usd: dict[str, dict[str, float]]

    @field_validator("per_usd", mode="before")
    @classmethod
    def _years_as_text(cls, v):
        if not isinstance(v, dict):
            return v
        out = {}
        for cur, years in v.items():
            if isinstance(years, dict):
                for year, rate in years.items():
                    if isinstance(rate, bool):
                        raise ValueError(f"{cur}.{year}: expected a positive number, found {rate!r}")
                years = {str(y): r for y, r in years.items()}
            out[str(cur)] = years
        return out

    @field_validator("per_usd")
    @classmethod
    def _positive(cls, v):
        for cur, years in v.items():
            for year, rate in years.items():
                if rate <= 0:
                    raise ValueError(f"{cur}.{year}: expected a positive number, found {rate!r}")
        return v


class ProxiesModel(_Strict):
    default: ProxyPolicy = "allowed"
    exchange_rates: RatesModel | None = None


class MethodologyFile(_Strict):
    """scoring/methodology.yaml, as written."""

    version: str
    edition: str = ""
    name: str = ""
    name_zh: str = ""
    scale: ScaleModel
    entropy: EntropyModel
    topsis: TopsisModel
    dimension_weights: WeightsModel
    missing_values: MissingModel
    proxies: ProxiesModel = ProxiesModel()
    dimensions: list[DimensionModel] = Field(min_length=1)

    @field_validator("version", "edition", mode="before")
    @classmethod
    def _text(cls, v):
        return v if isinstance(v, str) else str(v)


def load_methodology(path: str | Path | None = None) -> Methodology:
    """The methodology at `path`, else TALENT_INDEX_METHODOLOGY, else scoring/methodology.yaml."""
    path = Path(path) if path else Path(os.environ.get("TALENT_INDEX_METHODOLOGY") or DEFAULT_PATH)
    try:
        doc, raw_bytes = load_yaml(path, "methodology file")
    except ConfigFileError as exc:
        raise MethodologyError(str(exc)) from None
    try:
        f = MethodologyFile.model_validate(doc)
    except ValidationError as exc:
        raise MethodologyError(explain(exc, path, doc, raw_bytes, MethodologyFile)) from None
    dims = tuple(
        Dimension(
            id=d.id,
            name_en=d.name_en,
            name_zh=d.name_zh,
            indicators=tuple(
                Indicator(
                    id=i.id,
                    dimension=d.id,
                    name_en=i.name_en,
                    name_zh=i.name_zh,
                    direction=1 if i.direction == "+" else -1,
                    unit=i.unit,
                    source=i.source,
                    proxies=None if i.proxies is None else i.proxies == "allowed",
                    proxy=None if i.proxy is None else ProxySource(**i.proxy.model_dump()),
                    decimals=default_decimals(i.unit) if i.decimals is None else i.decimals,
                )
                for i in d.indicators
            ),
        )
        for d in f.dimensions
    )
    rates = f.proxies.exchange_rates
    m = Methodology(
        version=f.version,
        edition=f.edition,
        scale_low=f.scale.low,
        scale_high=f.scale.high,
        entropy_input=f.entropy.input,
        zero_rule=f.entropy.zero_rule,
        epsilon=f.entropy.epsilon,
        topsis_normalization=f.topsis.normalization,
        weights_mode=f.dimension_weights.mode,
        published_weights=dict(f.dimension_weights.published),
        missing_policy=f.missing_values.policy,
        proxies_default=f.proxies.default == "allowed",
        dimensions=dims,
        exchange_rates={} if rates is None else {c: dict(y) for c, y in rates.per_usd.items()},
        exchange_rates_source="" if rates is None else rates.source,
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        path=str(path),
    )
    _check(m, str(path))
    return m
