"""What a run of one edition would read, before it runs: every source's policy resolved, the vintage
it expects, the first URLs or files it reads, and what is missing (a secret, a page the policy has
no URL for, a curated file), without a single request. `talent-index sources check` prints it;
`server status` shows it for the next scheduled run of each deployment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from tasks.errors import PipelineError
from tasks.http import Recordings
from tasks.registry.cities import load_registry
from tasks.settings import local_path
from tasks.sources import load_sources_raw, resolve_source, source_spec
from tasks.store.editions import latest_release_edition

_SECRET = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
SHOWN_URLS = 3


@dataclass
class SourcePlan:
    source: str
    vintage: str = ""  # what the policy expects ("2025", "<= 2026", "current")
    note: str = ""  # the policy's own words (e.g. "Hurun list 2022-H1 (half-year ...)")
    reads: list[str] = field(default_factory=list)  # the first URLs or files (more follow from their answers)
    more: int = 0  # further requests of the first round not shown
    missing: list[str] = field(default_factory=list)  # what stops this source (the run cannot publish)
    notes: list[str] = field(default_factory=list)  # vintage notes known from the configuration alone

    @property
    def ready(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "vintage": self.vintage,
            "note": self.note,
            "reads": self.reads,
            "more": self.more,
            "missing": self.missing,
            "notes": self.notes,
            "ready": self.ready,
        }


def plan_source(name: str, raw: dict, edition: str, cadence: str, mode: str, registry) -> SourcePlan:

    out = SourcePlan(name)
    try:
        cfg = resolve_source(name, raw, edition, cadence, mode)
    except PipelineError as exc:  # EditionError included: the policy has nothing for this edition
        out.missing.append(str(exc))
        return out
    spec = source_spec(name, cfg)
    policy = cfg["vintage_policy"]
    out.vintage = "<= " + policy["expected"] if policy.get("rule") == "at_most" else policy["expected"]
    out.note = policy.get("note", "")
    out.notes = spec.vintage_notes(cfg, {})
    headers = (cfg.get("http") or {}).get("headers") or {}
    secrets = {v for value in headers.values() for v in _SECRET.findall(str(value))}
    try:
        first = spec.plan(cfg, registry, {})
    except (PipelineError, KeyError, ValueError) as exc:
        out.missing.append(f"cannot plan the requests: {exc}")
        return out
    for req in first:
        secrets.update(_SECRET.findall(req.url))
    for var in sorted(secrets):
        if mode != "offline" and not os.environ.get(var):
            instead = cfg.get("without_secrets")
            out.missing.append(
                f"{var} is not set (a secret its requests carry: environment or Prefect Secret block)"
                + (f"; with --allow-vintage-fallback it is read as {instead} instead" if instead else "")
            )
    seen = list(dict.fromkeys(r.url for r in first))
    out.reads, out.more = seen[:SHOWN_URLS], max(0, len(seen) - SHOWN_URLS)
    for url in seen:
        if url.startswith("file:") and not local_path(url).is_file():
            hint = spec.missing_file_hint(cfg)
            out.missing.append(f"{local_path(url)} does not exist" + (f": {hint}" if hint else ""))
    if mode == "offline":
        rec = Recordings(edition=edition)
        absent = [u for u in seen if not u.startswith("file:") and rec.get(u) is None]
        if absent:
            out.missing.append(
                f"no recording of {absent[0]} in {rec.index_path}"
                + (f" (+{len(absent) - 1} more)" if len(absent) > 1 else "")
            )
    return out


def preflight(
    edition: str, cadence: str = "annual", mode: str = "online", sources: list[str] | None = None
) -> list[SourcePlan]:
    """Every (or each chosen) configured source's plan for `edition`; nothing is fetched."""

    raw = load_sources_raw()
    unknown = [s for s in sources or [] if s not in raw]
    if unknown:
        raise PipelineError(f"unknown sources {unknown}; configured: {sorted(raw)}")
    registry = load_registry()
    return [plan_source(name, raw[name], edition, cadence, mode, registry) for name in (sources or raw)]


def edition_of_run(parameters: dict, year: int) -> str:
    """The edition a deployment's run at `year` would publish (its `edition` parameter; `auto`: the
    year of the run, or for the quarterly cadence the edition of the latest release)."""

    edition = str(parameters.get("edition") or "auto")
    if edition != "auto":
        return edition
    if parameters.get("cadence") == "quarterly":
        return latest_release_edition() or str(year)
    return str(year)
