"""Our data-quality checks: suites from JSON, run by Great Expectations, failures named.

GX itself is behind `tasks.gx_adapter` (the one module that touches it); this module sees plain
results and turns them into reports, messages and alerts.

Suites live in `expectations/<name>.json` as plain GX suites, with GX's own expectation `severity`:
`critical` (reported as `error`: blocks the release), `warning` (reported and alerted, the release
goes on) or `info`. Run-dependent values are GX suite parameters (`{"$PARAMETER": "registry_count"}`),
filled by GX from the parameters the caller passes (e.g. the registry's city ids).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks import gx_adapter
from tasks.errors import DataQualityError, PipelineError
from tasks.settings import EXPECTATIONS_DIR


@dataclass
class CheckResult:
    expectation: str
    column: str | None
    severity: str
    success: bool
    offending: list = field(default_factory=list)
    observed: object = None
    values: list = field(default_factory=list)  # the offending values, in the order of `offending`
    expected: str = ""  # what the expectation allows ("between 0 and 120", "one of 30 values")
    scope: str = ""  # which rows it checks, when not all ("index cities")

    def as_dict(self) -> dict:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "severity": self.severity,
            "success": self.success,
            "offending": [str(o) for o in self.offending][:50],
            "values": [str(v) for v in self.values][:50],
            "expected": self.expected,
            "scope": self.scope,
            "observed": None if self.observed is None else str(self.observed),
        }


@dataclass
class ValidationReport:
    source: str
    suite: str
    rows: int
    results: list[CheckResult]
    docs_page: str | None = None  # the validation's page in the run's Data Docs (relative to its folder)

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
            raise DataQualityError(self.source, self.suite, [r.as_dict() for r in self.errors], self.docs_page)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "suite": self.suite,
            "rows": self.rows,
            "success": self.success,
            "checks": len(self.results),
            "errors": [r.as_dict() for r in self.errors],
            "warnings": [r.as_dict() for r in self.warnings],
            "docs_page": self.docs_page,
        }

    def summary_markdown(self) -> str:
        lines = [
            f"### {self.source} — suite `{self.suite}`",
            "",
            f"{len(self.results)} checks on {self.rows} rows: {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings.",
            "",
        ]
        if self.errors or self.warnings:
            lines += [
                "| severity | expectation | column | rows | offending (value) | allowed |",
                "|---|---|---|---|---|---|",
            ]
            for r in self.errors + self.warnings:
                pairs = [f"{o} ({v})" for o, v in zip(r.offending, r.values, strict=False)] or list(
                    map(str, r.offending)
                )
                lines.append(
                    f"| {r.severity} | {r.expectation} | {r.column or ''} | {r.scope or 'all'} | "
                    f"{', '.join(pairs[:10])}{' …' if len(pairs) > 10 else ''} | {r.expected} |"
                )
        return "\n".join(lines)


def load_suite(name: str, directory: Path | None = None) -> dict:
    path = (directory or EXPECTATIONS_DIR) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise PipelineError(f"cannot read expectation suite {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise PipelineError(f"expectation suite {path} is not valid JSON: {exc}") from exc


LARGE_VALUE_SET = 256
SEVERITY = {"critical": "error", "warning": "warning", "info": "info"}  # GX's severities -> how we report them


def _check_parameters(spec: dict, params: dict) -> None:
    """Every suite parameter the suite names must be supplied (GX would fail the expectation with an
    exception message; this says which parameter and which suite)."""

    def names(value):
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                yield value["$PARAMETER"]
            else:
                for v in value.values():
                    yield from names(v)
        elif isinstance(value, list):
            for v in value:
                yield from names(v)

    missing = sorted({n for e in spec.get("expectations", []) for n in names(e.get("kwargs", {})) if n not in params})
    if missing:
        raise PipelineError(f"suite {spec.get('name')!r}: suite parameters {missing} were not supplied by the caller")


def _in_set(column: pd.Series, values) -> pd.Series:
    """`column.isin(values)`, through Arrow's hash lookup for a column of text: pandas' Arrow
    strings test membership after a Python pass over the value set, at every check (figures in
    the closing note of #32)."""
    if pd.api.types.is_string_dtype(column.dtype) and all(isinstance(v, str) for v in values):
        try:
            found = pc.is_in(
                pa.array(column, type=pa.large_string()), value_set=pa.array(values, type=pa.large_string())
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return column.isin(values)
        return pd.Series(found.fill_null(False).to_numpy(zero_copy_only=False), index=column.index)
    return column.isin(values)


def _precompute_large_sets(expectations: list[dict], frame: pd.DataFrame, params: dict) -> dict[str, str]:
    """Membership in a large value set (the registry's city ids), precomputed with pandas.

    GX 1.x copies an expectation's kwargs through pydantic every time it reads its configuration
    (thousands of times per suite), so `expect_column_values_to_be_in_set` with 10,000 city ids
    costs seconds per suite (figures in benchmarks/README.md). Such an expectation is run as the same expectation on a helper column
    `__<column>_in_set` (True where the value is in the set or null, as GX ignores nulls) with
    value_set [true]: same rows fail, reported under the original column. Returns helper -> column."""
    shown = {}
    for e in expectations:
        kw = e.get("kwargs", {})
        values, column = kw.get("value_set"), kw.get("column")
        if isinstance(values, dict) and "$PARAMETER" in values:
            values = params.get(values["$PARAMETER"])
        if (
            e.get("type") != "expect_column_values_to_be_in_set"
            or not isinstance(values, (list, tuple))
            or len(values) <= LARGE_VALUE_SET
            or column not in frame.columns
        ):
            continue
        helper = f"__{column}_in_set"
        frame[helper] = _in_set(frame[column], values) | frame[column].isna()
        e["kwargs"] = {**kw, "column": helper, "value_set": [True]}
        shown[helper] = column
    return shown


def run_suite(
    df: pd.DataFrame,
    suite: dict,
    *,
    source: str,
    key_column: str | None = "city_id",
    params: dict | None = None,
    docs_dir: Path | None = None,
    run_name: str | None = None,
) -> ValidationReport:
    """Validate `df` with a suite (dict as in expectations/*.json); never raises on failed checks.

    With `docs_dir`, the validation's result and its suite are kept for the Data Docs of that
    folder, rendered by `render_data_docs(docs_dir)` once all validations of the run are done
    (each render rebuilds the site's whole index, so once per run rather than per validation);
    `run_name` names the validation's run there (e.g. "numbeo, edition 2020")."""
    spec = copy.deepcopy(suite)
    params = dict(params or {})
    _check_parameters(spec, params)
    frame = df.reset_index(drop=True)
    shown_column = _precompute_large_sets(spec["expectations"], frame, params)
    outcomes, docs_page = gx_adapter.validate_frame(
        frame,
        source=source,
        table=str(spec.get("name", "table")),
        suite_name=spec.get("name", source),
        expectations=spec["expectations"],
        params=params,
        docs_dir=docs_dir,
        run_name=run_name,
    )
    results = []
    for res in outcomes:
        severity = SEVERITY.get(res.severity, "error")
        r = res.result
        offending: list = []
        values: list = []
        if not res.success:
            rows = r.get("unexpected_index_list") or []
            unexpected = list(r.get("unexpected_list") or [])
            if rows and key_column and key_column in frame.columns:
                pairs = dict.fromkeys(
                    (str(frame.iloc[i][key_column] if isinstance(i, int) else i), str(v))
                    for i, v in zip(rows, unexpected + [""] * (len(rows) - len(unexpected)), strict=True)
                )
                offending = [o for o, _ in pairs]
                values = [v for _, v in pairs] if unexpected else []
                if all(v in ("nan", "None", "") for v in values):  # a missing value has no value to show
                    values = []
            elif unexpected:
                offending = list(dict.fromkeys(str(o) for o in unexpected))
            elif res.exception_message:
                offending = [res.exception_message]
        column = res.kwargs.get("column")
        results.append(
            CheckResult(
                expectation=res.type,
                column=shown_column.get(column, column) if column else column,
                severity=severity,
                success=res.success,
                offending=offending,
                observed=r.get("observed_value"),
                values=values,
                expected=_allowed(res.kwargs),
                scope=str(res.meta.get("scope", "")),
            )
        )
    return ValidationReport(
        source=source, suite=spec.get("name", source), rows=len(frame), results=results, docs_page=docs_page
    )


def _allowed(kwargs: dict) -> str:
    """What an expectation's kwargs allow, in words (for messages and alerts)."""
    lo, hi = (f"{v:g}" if isinstance(v, float) else v for v in (kwargs.get("min_value"), kwargs.get("max_value")))
    if lo is not None or hi is not None:
        return (
            f"between {lo} and {hi}"
            if lo is not None and hi is not None
            else (f"at least {lo}" if lo is not None else f"at most {hi}")
        )
    if "value_set" in kwargs:
        vs = kwargs["value_set"]
        return f"one of {sorted(map(str, vs))}" if len(vs) <= 12 else f"one of {len(vs)} values"
    if "value" in kwargs:
        return f"{kwargs['value']}"
    return ""


def extra_check(name: str, severity: str, offending: list, column: str | None = None, observed=None) -> CheckResult:
    """A check GX does not express well (change against the previous snapshot, coverage)."""
    return CheckResult(
        expectation=name,
        column=column,
        severity=severity,
        success=not offending,
        offending=list(offending),
        observed=observed,
    )
