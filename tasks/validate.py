"""A small Great Expectations 1.x runner: suites from JSON, ephemeral context, named failures.

Suites live in `expectations/<name>.json` as plain GX suites. Each expectation's `meta.severity`
is `error` (blocks the release) or `warning` (reported and alerted, release goes on); default error.
String kwargs of the form "${param}" are filled from the parameters the caller passes (e.g. the
registry's city ids), so suites stay data while thresholds that depend on the run stay correct.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .errors import DataQualityError, PipelineError
from .settings import EXPECTATIONS_DIR

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
_LOCK = threading.Lock()
# Data Docs folder -> (validation result, suite) identifiers validated but not yet rendered there
_PENDING_DOCS: dict[Path, list] = {}


@dataclass
class CheckResult:
    expectation: str
    column: str | None
    severity: str
    success: bool
    offending: list = field(default_factory=list)
    observed: object = None

    def as_dict(self) -> dict:
        return {"expectation": self.expectation, "column": self.column, "severity": self.severity,
                "success": self.success, "offending": [str(o) for o in self.offending][:50],
                "observed": None if self.observed is None else str(self.observed)}


@dataclass
class ValidationReport:
    source: str
    suite: str
    rows: int
    results: list[CheckResult]

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    @property
    def success(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        if self.errors:
            raise DataQualityError(self.source, self.suite, [r.as_dict() for r in self.errors])

    def as_dict(self) -> dict:
        return {"source": self.source, "suite": self.suite, "rows": self.rows, "success": self.success,
                "checks": len(self.results), "errors": [r.as_dict() for r in self.errors],
                "warnings": [r.as_dict() for r in self.warnings]}

    def summary_markdown(self) -> str:
        lines = [f"### {self.source} — suite `{self.suite}`", "",
                 f"{len(self.results)} checks on {self.rows} rows: {len(self.errors)} errors, "
                 f"{len(self.warnings)} warnings.", ""]
        if self.errors or self.warnings:
            lines += ["| severity | expectation | column | offending |", "|---|---|---|---|"]
            for r in self.errors + self.warnings:
                lines.append(f"| {r.severity} | {r.expectation} | {r.column or ''} | "
                             f"{', '.join(map(str, r.offending[:10]))} |")
        return "\n".join(lines)


def load_suite(name: str, directory: Path | None = None) -> dict:
    path = (directory or EXPECTATIONS_DIR) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise PipelineError(f"cannot read expectation suite {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise PipelineError(f"expectation suite {path} is not valid JSON: {exc}") from exc


def _fill(value, params: dict):
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        key = value[2:-1]
        if key not in params:
            raise PipelineError(f"suite parameter {key!r} was not supplied by the caller")
        return params[key]
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    return value


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx  # lazy: the import costs seconds

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return ctx


_COUNTER = iter(range(1, 10**9))


def _docs_site(ctx, docs_dir: Path) -> str:
    """A Data Docs site writing into `docs_dir` (one per folder, registered once per process)."""
    import hashlib

    name = "run-" + hashlib.sha256(str(docs_dir).encode()).hexdigest()[:12]
    if name not in (ctx.get_config().data_docs_sites or {}):
        ctx.add_data_docs_site(site_name=name, site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}})
    return name


LARGE_VALUE_SET = 256


def _precompute_large_sets(expectations: list[dict], frame: pd.DataFrame) -> dict[str, str]:
    """Membership in a large value set (the registry's city ids), precomputed with pandas.

    GX 1.x copies an expectation's kwargs through pydantic every time it reads its configuration
    (thousands of times per suite), so `expect_column_values_to_be_in_set` with 10,000 city ids
    costs ~2.6 s per suite. Such an expectation is run as the same expectation on a helper column
    `__<column>_in_set` (True where the value is in the set or null, as GX ignores nulls) with
    value_set [true]: same rows fail, reported under the original column. Returns helper -> column."""
    shown = {}
    for e in expectations:
        kw = e.get("kwargs", {})
        values, column = kw.get("value_set"), kw.get("column")
        if (e.get("type") != "expect_column_values_to_be_in_set" or not isinstance(values, (list, tuple))
                or len(values) <= LARGE_VALUE_SET or column not in frame.columns):
            continue
        helper = f"__{column}_in_set"
        frame[helper] = frame[column].isin(set(values)) | frame[column].isna()
        e["kwargs"] = {**kw, "column": helper, "value_set": [True]}
        shown[helper] = column
    return shown


def run_suite(df: pd.DataFrame, suite: dict, *, source: str, key_column: str | None = "city_id",
              params: dict | None = None, docs_dir: Path | None = None) -> ValidationReport:
    """Validate `df` with a suite (dict as in expectations/*.json); never raises on failed checks.

    With `docs_dir`, the validation runs through a GX checkpoint and its result is kept for the Data
    Docs of that folder, rendered by `render_data_docs(docs_dir)` once all validations of the run are
    done (each render rebuilds the site's index: ~0.5 s, so once per run rather than per validation)."""
    from great_expectations.core import ExpectationSuite

    spec = copy.deepcopy(suite)
    spec["expectations"] = [dict(e, kwargs=_fill(e.get("kwargs", {}), params or {}))
                            for e in spec.get("expectations", [])]
    severities = [str(e.get("meta", {}).get("severity", "error")) for e in spec["expectations"]]
    frame = df.reset_index(drop=True)
    shown_column = _precompute_large_sets(spec["expectations"], frame)
    with _LOCK:
        ctx = _context()
        n = next(_COUNTER)
        ds = ctx.data_sources.add_pandas(f"{source}-{n}")
        asset = ds.add_dataframe_asset(f"table-{n}")
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
        gx_suite = ExpectationSuite(name=f"{spec.get('name', source)}-{n}", expectations=spec["expectations"])
        if docs_dir is None:
            batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(gx_suite, result_format="COMPLETE")
        else:
            import great_expectations as gx

            from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

            gx_suite = ctx.suites.add(gx_suite)
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"vd-{n}", data=batch_def, suite=gx_suite))
            cp = ctx.checkpoints.add(gx.Checkpoint(name=f"cp-{n}", validation_definitions=[vd],
                                                   result_format="COMPLETE", actions=[]))
            result_id, result = next(iter(cp.run(batch_parameters={"dataframe": frame}).run_results.items()))
            _PENDING_DOCS.setdefault(Path(docs_dir), []).extend(
                [result_id, ExpectationSuiteIdentifier(name=gx_suite.name)])
        ctx.data_sources.delete(f"{source}-{n}")
    results = []
    for res in result.results:
        cfg = res.expectation_config
        idx = next((i for i, e in enumerate(spec["expectations"]) if e["type"] == cfg.type
                    and all(e["kwargs"].get(k) == cfg.kwargs.get(k) for k in e["kwargs"])), None)
        severity = severities[idx] if idx is not None else "error"
        r = res.result or {}
        offending = []
        if not res.success:
            rows = r.get("unexpected_index_list") or []
            if rows and key_column and key_column in frame.columns:
                offending = [frame.iloc[i][key_column] if isinstance(i, int) else i for i in rows]
                offending = list(dict.fromkeys(str(o) for o in offending))
            elif r.get("unexpected_list"):
                offending = list(dict.fromkeys(str(o) for o in r["unexpected_list"]))
            elif res.exception_info and res.exception_info.get("raised_exception"):
                offending = [res.exception_info.get("exception_message")]
        column = cfg.kwargs.get("column")
        results.append(CheckResult(expectation=cfg.type, column=shown_column.get(column, column), severity=severity,
                                   success=bool(res.success), offending=offending,
                                   observed=r.get("observed_value")))
    return ValidationReport(source=source, suite=spec.get("name", source), rows=len(frame), results=results)


def render_data_docs(docs_dir: Path) -> Path | None:
    """Render the GX Data Docs of the validations `run_suite` ran for `docs_dir` since the last render
    into that folder (index.html, one page per validation and per suite; the pages link CSS from
    CDNs, so offline they render unstyled). Returns the index, or None when nothing was pending."""
    docs_dir = Path(docs_dir)
    with _LOCK:
        pending = _PENDING_DOCS.pop(docs_dir, [])
        if not pending:
            return None
        ctx = _context()
        docs_dir.mkdir(parents=True, exist_ok=True)
        ctx.build_data_docs(site_names=[_docs_site(ctx, docs_dir)], resource_identifiers=pending)
    return docs_dir / "index.html"


def extra_check(name: str, severity: str, offending: list, column: str | None = None,
                observed=None) -> CheckResult:
    """A check GX does not express well (change against the previous snapshot, coverage)."""
    return CheckResult(expectation=name, column=column, severity=severity, success=not offending,
                       offending=list(offending), observed=observed)
