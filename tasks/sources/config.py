"""`data/sources.yaml` read into typed models, once per version of the file.

Every source entry is checked against the model its module declares (`Source.settings_model`, a
subclass of `SourceSettings`: the keys every source has plus its own); a wrong type, a value out of
its choices or an unknown key is one line naming the file, the line and the key path:

    data/sources.yaml line 59: hurun.lists.2020.kind: expected 'annual' or 'half-year', found 'yearly'

The entries come back as plain mappings (what the file says, checked and typed), for the edition
policy (`tasks.sources.resolve_source`) and the source modules.
"""

from __future__ import annotations

import copy
import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scoring.yamlconfig import ConfigFileError, explain, load_yaml
from tasks.errors import PipelineError
from tasks.settings import sources_path
from tasks.sources.base import Source
from tasks.sources.schema import SourceSettings


def import_spec(name: str, module: str) -> Source:
    """The `SPEC` of a source's module."""
    return _import_spec(name, module)


@lru_cache(maxsize=64)
def _import_spec(name: str, module: str) -> Source:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise PipelineError(
            f"source {name!r}: cannot import its module {module!r} ({exc}); "
            f"set `module:` under {name} in the sources configuration"
        ) from None
    spec = getattr(mod, "SPEC", None)
    if not isinstance(spec, Source):
        raise PipelineError(f"source {name!r}: module {module!r} declares no SPEC (a tasks.sources.base.Source)")
    if spec.name != name:
        raise PipelineError(f"source {name!r}: module {module!r} declares the source {spec.name!r}")
    return spec


def module_of(name: str, cfg: dict) -> str:
    return str(cfg.get("module") or f"tasks.sources.{name}")


def load_sources_raw(path: str | Path | None = None) -> dict[str, dict]:
    """Every source's configuration as written (defaults merged in, checked against the source's
    model), before any edition is chosen. Read once per version of the file."""
    p = sources_path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise PipelineError(f"cannot read the sources configuration {p}: {exc.strerror}") from None
    return copy.deepcopy(_load(str(p), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> dict[str, dict]:
    p = Path(path)
    try:
        doc, raw = load_yaml(p, "sources configuration")
    except ConfigFileError as exc:
        raise PipelineError(str(exc)) from None
    if not isinstance(doc, dict):
        raise PipelineError(f"{p}: expected a mapping of source names to settings, found {type(doc).__name__}")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise PipelineError(f"{p}: defaults: expected a mapping of settings, found {defaults!r}")
    out = {}
    for name, cfg in doc.items():
        if name == "defaults":
            continue
        if not isinstance(cfg, dict):
            raise PipelineError(f"{p}: source {name!r} must be a mapping of settings, found {cfg!r}")
        merged = {**defaults, **cfg}
        merged["http"] = {**(defaults.get("http") or {}), **(cfg.get("http") or {})}
        model = import_spec(str(name), module_of(str(name), merged)).settings_model
        out[str(name)] = _checked(model, merged, p, doc, raw, (name,))
        for key in ("offline", "without_secrets"):  # the settings they replace must still be valid
            if merged.get(key):
                both = {k: v for k, v in merged.items() if k not in ("offline", "without_secrets")} | merged[key]
                _checked(model, both, p, doc, raw, (name, key))
    return out


def _checked(model: type[SourceSettings], cfg: dict, path: Path, doc: Any, raw: bytes, prefix: tuple) -> dict:
    try:
        settings = model.model_validate(cfg)
    except ValidationError as exc:
        raise PipelineError(explain(exc, path, doc, raw, model, prefix=prefix)) from None
    out = settings.model_dump(exclude_unset=True)
    if "http" in out:
        out["http"] = {k: v for k, v in out["http"].items() if k in cfg.get("http", {})}  # as written
    return out
