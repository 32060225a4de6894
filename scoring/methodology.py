"""The method as configuration: load and check `scoring/methodology.yaml`."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_PATH = Path(__file__).with_name("methodology.yaml")
# YAML's safe loader, libyaml's when PyYAML was built with it (same documents and error marks, faster)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MethodologyError(ValueError):
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


PROXY_KEYS = {"source", "indicator", "use", "multiply", "money", "stands_for", "transform"}


def _proxy_source(value, where: str) -> ProxySource | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MethodologyError(f"{where}.proxy: expected a mapping (source, indicator, ...), found {value!r}")
    unknown = sorted(set(value) - PROXY_KEYS)
    if unknown:
        raise MethodologyError(f"{where}.proxy: unknown key {unknown[0]!r}; known: {sorted(PROXY_KEYS)}")
    for key in ("source", "indicator"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise MethodologyError(f"{where}.proxy.{key}: expected a name, found {value.get(key)!r}")
    use = value.get("use", "per_city")
    if use not in ("per_city", "when_no_real_value"):
        raise MethodologyError(f"{where}.proxy.use: expected per_city or when_no_real_value, found {use!r}")
    try:
        multiply = float(value.get("multiply", 1.0))
    except (TypeError, ValueError):
        raise MethodologyError(f"{where}.proxy.multiply: expected a number, found {value['multiply']!r}") from None
    money = value.get("money", False)
    if not isinstance(money, bool):
        raise MethodologyError(f"{where}.proxy.money: expected true or false, found {money!r}")
    return ProxySource(
        source=value["source"],
        indicator=value["indicator"],
        use=use,
        multiply=multiply,
        money=money,
        stands_for=str(value.get("stands_for", "")),
        transform=str(value.get("transform", "")),
    )


def _exchange_rates(value, where: str) -> tuple[dict, str]:
    """`proxies.exchange_rates`: {source: text, per_usd: {CUR: {year: rate}}}."""
    if value is None:
        return {}, ""
    if not isinstance(value, dict) or not isinstance(value.get("per_usd"), dict) or not value.get("source"):
        raise MethodologyError(f"{where}.exchange_rates: expected source (where the rates come from) and per_usd")
    rates: dict = {}
    for cur, by_year in value["per_usd"].items():
        if not isinstance(by_year, dict):
            raise MethodologyError(
                f"{where}.exchange_rates.per_usd.{cur}: expected year: rate pairs, found {by_year!r}"
            )
        for year, rate in by_year.items():
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
                raise MethodologyError(
                    f"{where}.exchange_rates.per_usd.{cur}.{year}: expected a positive number, found {rate!r}"
                )
            rates.setdefault(str(cur), {})[str(year)] = float(rate)
    return rates, str(value["source"])


def _proxies(value, where: str) -> bool | None:
    if value is None:
        return None
    if value in ("allowed", "refused"):
        return value == "allowed"
    raise MethodologyError(f"{where}: proxies must be 'allowed' or 'refused', found {value!r}")


def load_methodology(path: str | Path | None = None) -> Methodology:
    """The methodology at `path`, else TALENT_INDEX_METHODOLOGY, else scoring/methodology.yaml."""
    import os

    path = Path(path) if path else Path(os.environ.get("TALENT_INDEX_METHODOLOGY") or DEFAULT_PATH)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise MethodologyError(f"cannot read methodology file {path}: {exc.strerror}") from exc
    try:
        doc = yaml.load(raw_bytes, Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        raise MethodologyError(f"{path}: not valid YAML: {exc}") from exc
    try:
        dims = []
        for d in doc["dimensions"]:
            inds = []
            for i in d["indicators"]:
                direction = {"+": 1, "-": -1, "−": -1}.get(str(i["direction"]).strip())
                if direction is None:
                    raise MethodologyError(
                        f"{path}: indicator {i['id']!r} has direction {i['direction']!r}, expected '+' or '-'"
                    )
                inds.append(
                    Indicator(
                        id=i["id"],
                        dimension=d["id"],
                        name_en=i["name_en"],
                        name_zh=i.get("name_zh", ""),
                        direction=direction,
                        unit=str(i.get("unit", "")),
                        source=i["source"],
                        proxies=_proxies(i.get("proxies"), f"{path}: indicator {i['id']!r}"),
                        proxy=_proxy_source(i.get("proxy"), f"{path}: dimensions.{d['id']}.indicators.{i['id']}"),
                    )
                )
            dims.append(
                Dimension(id=d["id"], name_en=d["name_en"], name_zh=d.get("name_zh", ""), indicators=tuple(inds))
            )
        rates, rates_source = _exchange_rates((doc.get("proxies") or {}).get("exchange_rates"), f"{path}: proxies")
        m = Methodology(
            version=str(doc["version"]),
            edition=str(doc.get("edition", "")),
            scale_low=float(doc["scale"]["low"]),
            scale_high=float(doc["scale"]["high"]),
            entropy_input=doc["entropy"]["input"],
            zero_rule=doc["entropy"]["zero_rule"],
            epsilon=float(doc["entropy"].get("epsilon", 1e-4)),
            topsis_normalization=doc["topsis"]["normalization"],
            weights_mode=doc["dimension_weights"]["mode"],
            published_weights={k: float(v) for k, v in doc["dimension_weights"]["published"].items()},
            missing_policy=doc["missing_values"]["policy"],
            proxies_default=bool(_proxies((doc.get("proxies") or {}).get("default", "allowed"), f"{path}: proxies")),
            dimensions=tuple(dims),
            exchange_rates=rates,
            exchange_rates_source=rates_source,
            sha256=hashlib.sha256(raw_bytes).hexdigest(),
            path=str(path),
        )
    except (KeyError, TypeError) as exc:
        raise MethodologyError(f"{path}: missing or malformed key {exc}") from exc
    _check(m, str(path))
    return m
