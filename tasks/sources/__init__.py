"""The configured sources: `data/sources.yaml` names them, each one's module declares it (`SPEC`, a
`tasks.sources.base.Source`). A source entry may name its module with `module:` (default
`tasks.sources.<name>`), so a new source needs no change anywhere else."""

from __future__ import annotations

from pathlib import Path

from tasks.errors import PipelineError
from tasks.registry.build import CityList
from tasks.settings import sources_path
from tasks.sources.base import EditionError, Source, VintagePolicy
from tasks.sources.config import import_spec, load_sources_raw, module_of
from tasks.store.editions import default_edition

CADENCES = ("annual", "quarterly")


def source_spec(name: str, cfg: dict | None = None) -> Source:
    """The declared interface of one configured source."""
    if cfg is None:
        raw = load_sources_raw()
        if name not in raw:
            raise PipelineError(f"unknown source {name!r}; configured in {sources_path()}: {sorted(raw)}")
        cfg = raw[name]
    return import_spec(name, module_of(name, cfg))


def read_city_list(name: str, path: Path | list[Path]) -> CityList:
    """Source `name`'s own list of cities from saved files (for `talent-index cities build`)."""
    spec = source_spec(name)
    paths = path if isinstance(path, list) else [path]
    bodies = []
    for p in paths:
        try:
            bodies.append(Path(p).read_bytes())
        except OSError as exc:
            raise PipelineError(f"cannot read the {name} list {p}: {exc.strerror}") from None
    location = " + ".join(map(str, paths))
    return CityList(spec, spec.city_list(spec.city_list_body(bodies, location), location))


def all_sources(path: str | Path | None = None) -> dict[str, Source]:
    """Every configured source, in the order of the configuration."""
    return {name: source_spec(name, cfg) for name, cfg in load_sources_raw(path).items()}


MODES = ("online", "offline", "record")


def resolve_source(name: str, raw: dict, edition: str, cadence: str = "annual", mode: str = "offline") -> dict:
    """A source's configuration for index edition `edition`: URLs filled in by its edition policy,
    plus `edition`, `cadence` and `vintage_policy` (what vintage the policy expects). Settings under
    `offline:` replace the others in offline mode (what the bundled sample replays)."""
    if cadence not in CADENCES:
        raise PipelineError(f"unknown cadence {cadence!r}; expected one of {CADENCES}")
    if mode not in MODES:
        raise PipelineError(f"unknown mode {mode!r}; expected one of {MODES}")
    overrides = raw.get("offline") or {}
    raw = {k: v for k, v in raw.items() if k != "offline"}
    if mode == "offline":
        raw = {**raw, **overrides}
    spec = source_spec(name, raw)
    for key, what in spec.required.items():
        if key not in raw and not any(key in (e or {}) for e in (raw.get("editions") or {}).values()):
            raise PipelineError(f"[source {name}, {sources_path()}] the setting {key!r} is missing ({what})")
    cfg, policy = spec.edition_config(dict(raw), str(edition), cadence)
    return {
        **cfg,
        "edition": str(edition),
        "cadence": cadence,
        "mode": mode,
        "vintage_policy": {"expected": policy.expected, "rule": policy.rule, "note": policy.note},
    }


def vintage_policy(cfg: dict) -> VintagePolicy:
    p = cfg.get("vintage_policy") or {"expected": str(cfg.get("edition"))}
    return VintagePolicy(str(p["expected"]), p.get("rule", "equal"), p.get("note", ""))


def load_sources_config(
    path: str | Path | None = None, edition: str | None = None, cadence: str = "annual", mode: str = "offline"
) -> dict[str, dict]:
    """Every source's configuration resolved for one edition (default: the newest recorded one)."""
    edition = str(edition or default_edition())
    return {name: resolve_source(name, cfg, edition, cadence, mode) for name, cfg in load_sources_raw(path).items()}


__all__ = [
    "CADENCES",
    "EditionError",
    "Source",
    "VintagePolicy",
    "all_sources",
    "load_sources_config",
    "load_sources_raw",
    "read_city_list",
    "resolve_source",
    "source_spec",
    "sources_path",
    "vintage_policy",
]
