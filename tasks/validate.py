"""A small Great Expectations 1.x runner: suites from JSON, ephemeral context, named failures.

Suites live in `expectations/<name>.json` as plain GX suites, with GX's own expectation `severity`:
`critical` (reported as `error`: blocks the release), `warning` (reported and alerted, the release
goes on) or `info`. Run-dependent values are GX suite parameters (`{"$PARAMETER": "registry_count"}`),
filled by GX from the parameters the caller passes (e.g. the registry's city ids).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.errors import DataQualityError, PipelineError
from tasks.settings import EXPECTATIONS_DIR, PROJECT_ROOT

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


_STAND_IN_LOCK = threading.Lock()


class _LoadedOnFirstUse(types.ModuleType):
    """Stands in sys.modules for a module not loaded yet: the first attribute it lacks loads the real
    module, which replaces it there (and whose attributes it takes on)."""

    def __getattr__(self, attr: str):
        name = self.__name__
        with _STAND_IN_LOCK:  # takes out this stand-in only, never the real module another thread put there
            if sys.modules.get(name) is self:
                del sys.modules[name]
        real = importlib.import_module(name)  # the import system's own lock: loaded once
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def load_on_first_use(name: str) -> None:
    """`import name` (and `from parent import name`) give a stand-in until an attribute of the module
    is used; nothing changes if it is loaded already."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    module = _LoadedOnFirstUse(name)
    module.__spec__ = spec
    module.__file__ = spec.origin
    if spec.submodule_search_locations is not None:  # a package: its submodules import on their own
        module.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = module


@lru_cache(maxsize=1)
def _import_gx() -> None:
    """Import Great Expectations, once, on first use (a long import). GX imports scipy.stats and altair
    as it loads, for one expectation (the KL divergence), which uses them only when it runs and which
    no suite here has: they load when something uses them, not with GX."""
    for name in ("scipy.stats", "altair"):
        load_on_first_use(name)
    import great_expectations  # noqa: F401


@lru_cache(maxsize=1)
def _context():
    _import_gx()
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}  # type: ignore[assignment]
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return ctx


_COUNTER = iter(range(1, 10**9))
_BATCH_DEFINITIONS: dict[tuple[str, str], Any] = {}  # (source, table) -> GX batch definition


def _batch_definition(ctx, source: str, table: str):
    """The whole-dataframe batch definition of a source's table, made once per process and used for
    every dataframe validated against it: GX writes out its whole configuration each time a data
    source, asset or batch definition is added or deleted."""
    if (source, table) not in _BATCH_DEFINITIONS:
        sources = ctx.data_sources.all()
        ds = sources[source] if source in sources else ctx.data_sources.add_pandas(source)
        _BATCH_DEFINITIONS[source, table] = ds.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
    return _BATCH_DEFINITIONS[source, table]


# GX's page views, compiling their templates once per process (tasks/gx_views.py)
_VIEWS = {
    k: {"module_name": "tasks.gx_views", "class_name": c} for k, c in (("index", "IndexPageView"), ("page", "PageView"))
}


def _docs_site(ctx, docs_dir: Path) -> str:
    """A Data Docs site writing into `docs_dir`, registered for one render (`render_data_docs` deletes
    it afterwards, so it is never there already)."""
    name = "run-" + hashlib.sha256(str(docs_dir).encode()).hexdigest()[:12]
    ctx.add_data_docs_site(
        site_name=name,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": _VIEWS["index"]},
            "site_section_builders": {s: {"view": _VIEWS["page"]} for s in ("expectations", "validations")},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        },
    )
    return name


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
        frame[helper] = frame[column].isin(set(values)) | frame[column].isna()
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
    _import_gx()
    from great_expectations.core import ExpectationSuite

    spec = copy.deepcopy(suite)
    params = dict(params or {})
    _check_parameters(spec, params)
    frame = df.reset_index(drop=True)
    shown_column = _precompute_large_sets(spec["expectations"], frame, params)
    with _LOCK:
        ctx = _context()
        n = next(_COUNTER)
        gx_suite = ExpectationSuite(name=_suite_name(spec.get("name", source), n), expectations=spec["expectations"])
        batch = _batch_definition(ctx, source, str(spec.get("name", "table"))).get_batch(
            batch_parameters={"dataframe": frame}
        )
        key = _validation_key(batch, frame, source, spec, params)
        result = _validate(batch, gx_suite, params, key)
        docs_page = None
        if docs_dir is not None:
            docs_page = _keep_for_docs(ctx, gx_suite, batch.id, result, run_name or source, Path(docs_dir))
    results = []
    for res in result.results:
        cfg = res.expectation_config
        severity = SEVERITY.get(str(getattr(cfg.severity, "value", cfg.severity)), "error")
        r = res.result or {}
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
            elif res.exception_info and res.exception_info.get("raised_exception"):
                offending = [res.exception_info.get("exception_message")]
        column = cfg.kwargs.get("column")
        results.append(
            CheckResult(
                expectation=cfg.type,
                column=shown_column.get(column, column),
                severity=severity,
                success=bool(res.success),
                offending=offending,
                observed=r.get("observed_value"),
                values=values,
                expected=_allowed(cfg.kwargs),
                scope=str((cfg.meta or {}).get("scope", "")),
            )
        )
    return ValidationReport(
        source=source, suite=spec.get("name", source), rows=len(frame), results=results, docs_page=docs_page
    )


# validation key -> GX result, for the last validations of this process (see _validate)
_RESULTS: OrderedDict[str, Any] = OrderedDict()
RESULTS_KEPT = 64


def _validation_key(batch, frame: pd.DataFrame, source: str, spec: dict, params: dict) -> str | None:
    """What a validation's result depends on: the table (GX's own fingerprint of the batch's values
    and index, with the column names and dtypes, which it leaves out), the expectations and the suite
    parameters. None when GX gave no fingerprint."""
    fingerprint = (batch.batch_markers or {}).get("pandas_data_fingerprint")
    if not fingerprint:
        return None
    what = [source, fingerprint, [str(c) for c in frame.columns], [str(t) for t in frame.dtypes]]
    what += [spec["expectations"], params]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _validate(batch, gx_suite, params: dict, key: str | None):
    """GX's result of the suite on the batch.

    A result is a function of its key (`_validation_key`): one this process has already computed is
    reused, with this batch's markers and this suite's name (a process that validates one table
    again and again, as a backfill re-running an edition or the tests do, runs GX once for it).

    Every failing row and value are only listed in a complete result, which GX computes for every
    expectation when asked, passing or not: the suite runs with the basic result format, then the
    failing expectations alone run again with the complete one, their results replacing the basic
    ones (the reports and the Data Docs are the same as a complete run of the whole suite)."""
    from great_expectations.core import ExpectationSuite

    if key is not None and key in _RESULTS:
        _RESULTS.move_to_end(key)
        result = copy.deepcopy(_RESULTS[key])
        result.suite_name = gx_suite.name
        result.meta["batch_markers"] = batch.batch_markers
        return result
    result = batch.validate(gx_suite, result_format="BASIC", expectation_parameters=params)
    failed = [r for r in result.results if not r.success]
    if failed:
        again = ExpectationSuite(name=gx_suite.name, expectations=[r.expectation_config for r in failed])
        complete = batch.validate(again, result_format="COMPLETE", expectation_parameters=params)
        by_config = {_config_id(r.expectation_config): r for r in complete.results}
        if all(_config_id(r.expectation_config) in by_config for r in failed):
            result.results = [by_config.get(_config_id(r.expectation_config), r) for r in result.results]
        else:  # not expected: GX changed the configurations it reports
            result = batch.validate(gx_suite, result_format="COMPLETE", expectation_parameters=params)
    if key is not None:
        _RESULTS[key] = copy.deepcopy(result)
        while len(_RESULTS) > RESULTS_KEPT:
            _RESULTS.popitem(last=False)
    return result


def _config_id(cfg) -> str:
    return json.dumps([cfg.type, cfg.kwargs], sort_keys=True, default=str)


_SUITE_NAMES: set[str] = set()  # the suite names this process's GX context holds (for Data Docs)


def _suite_name(name: str, n: int) -> str:
    """The suite's own name in Data Docs; a numbered one when this process has used the name."""
    return name if name not in _SUITE_NAMES else f"{name} #{n}"


def _keep_for_docs(ctx, suite, batch_id: str, result, run_name: str, docs_dir: Path) -> str:
    """Keep a validation's result and its suite in the context's stores for the Data Docs of
    `docs_dir` (what a GX checkpoint run stores, without a checkpoint's bookkeeping, which cost more
    than the validation itself); returns the page the result will have there."""
    import datetime

    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run_id = RunIdentifier(run_name=run_name, run_time=datetime.datetime.now(datetime.UTC))
    result.meta.update(
        {"run_id": run_id, "validation_time": run_id.run_time, "batch_parameters": {"dataframe": "<DATAFRAME>"}}
    )
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    result_id = ValidationResultIdentifier(
        batch_identifier=batch_id, expectation_suite_identifier=suite_id, run_id=run_id
    )
    ctx.suites.add(suite)
    _SUITE_NAMES.add(suite.name)
    ctx.validation_results_store.set(result_id, result)
    _PENDING_DOCS.setdefault(docs_dir, []).extend([result_id, suite_id])
    return "validations/" + "/".join(str(p) for p in result_id.to_tuple()) + ".html"


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


def render_data_docs(docs_dir: Path) -> Path | None:
    """Render the GX Data Docs of the validations `run_suite` ran for `docs_dir` since the last render
    into that folder (index.html, one page per validation and per suite), with the stylesheets,
    scripts and fonts GX loads from CDNs replaced by the vendored copies (`make install`), so that
    they work offline. Returns the index, or None when nothing was pending."""
    docs_dir = Path(docs_dir)
    with _LOCK:
        pending = _PENDING_DOCS.pop(docs_dir, [])
        if not pending:
            return None
        ctx = _context()
        docs_dir.mkdir(parents=True, exist_ok=True)
        site = _docs_site(ctx, docs_dir)
        try:
            ctx.build_data_docs(site_names=[site], resource_identifiers=pending)
        finally:
            # GX writes out its whole configuration, every site included, with each change to it:
            # a site is registered for one render only, or a process rendering many runs (a
            # backfill, the tests) would write more with each one
            ctx.delete_data_docs_site(site)
        localise_data_docs(docs_dir)
    return docs_dir / "index.html"


VENDORED = PROJECT_ROOT / "vendor" / "data-docs"
ASSETS_SPEC = PROJECT_ROOT / "ops" / "data-docs-assets.json"
_GX_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/([\w.-]+\.png)(\?[^\"']*)?"
)


def localise_data_docs(docs_dir: Path) -> bool:
    """Point every Data Docs page at local copies of its CDN assets (copied once per data home,
    beside the runs, or into the folder itself elsewhere). False, with the pages left as they are,
    when the assets were not vendored."""
    import shutil

    spec = json.loads(ASSETS_SPEC.read_text())
    folders = {p["name"]: VENDORED / f"{p['name'].replace('/', '__')}@{p['version']}" for p in spec["packages"]}
    if not all((f / ".integrity").is_file() for f in folders.values()):
        logging.getLogger(__name__).warning("Data Docs assets not vendored (run `make install`): pages load CDNs")
        return False
    runs = docs_dir.parent.parent
    assets = runs / "_data-docs-assets" if runs.name == "runs" else docs_dir / "_assets"
    stamp = hashlib.sha256(ASSETS_SPEC.read_bytes()).hexdigest()[:16]
    if not (assets / f".{stamp}").exists():
        for f in folders.values():
            shutil.copytree(f, assets / f.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".integrity"))
        import great_expectations

        logo = Path(str(great_expectations.__file__)).parent / "render" / "view" / "static" / "images"
        shutil.copytree(logo, assets / "great_expectations", dirs_exist_ok=True)
        (assets / f".{stamp}").write_text("complete")
    urls = {url: folders[p["name"]].name + "/" + rel for p in spec["packages"] for url, rel in p["cdn"].items()}
    for page in docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        base = os.path.relpath(assets, page.parent)
        new = text
        for url, rel in urls.items():
            new = new.replace(f'"{url}"', f'"{base}/{rel}"')
        new = _GX_LOGO.sub(rf"{base}/great_expectations/\1", new)
        if new != text:
            page.write_text(new, encoding="utf-8")
    return True


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
