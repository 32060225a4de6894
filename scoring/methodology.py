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
class Indicator:
    id: str
    dimension: str
    name_en: str
    name_zh: str
    direction: int  # +1 benefit, -1 cost
    unit: str
    source: str
    proxies: bool | None = None  # None: the methodology's default


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
                    )
                )
            dims.append(
                Dimension(id=d["id"], name_en=d["name_en"], name_zh=d.get("name_zh", ""), indicators=tuple(inds))
            )
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
            sha256=hashlib.sha256(raw_bytes).hexdigest(),
            path=str(path),
        )
    except (KeyError, TypeError) as exc:
        raise MethodologyError(f"{path}: missing or malformed key {exc}") from exc
    _check(m, str(path))
    return m
