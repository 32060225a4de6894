"""The one door to Great Expectations: everything that touches GX (1.24) lives here.

`tasks.validate` (our suites, reports and messages) calls `validate_frame` and `render_data_docs`
and sees plain results (`GxResult`), never a GX object. Most of what this module uses is GX's public
1.x API (`get_context`, data sources, batch definitions, `ExpectationSuite`, `batch.validate`,
`add_data_docs_site`, `build_data_docs`). Where it relies on more, the reason is measured or there
is no public route, and each such internal is listed in `INTERNALS` with a check that the tests run
(`tests/test_framework_internals.py`), so that an upgrade of GX that changes one fails naming it:

- the validation-results store and resource identifiers (`ctx.validation_results_store.set`,
  `RunIdentifier`, `ValidationResultIdentifier`, `ExpectationSuiteIdentifier`): the public route to
  Data Docs of a validation is a checkpoint with an `UpdateDataDocsAction`, whose bookkeeping costs
  more than the validation itself (benchmarks/README.md); this stores what a checkpoint run stores.
- the batch's `pandas_data_fingerprint` marker: GX's own fingerprint of a dataframe, the key of the
  result cache (a backfill validates the same table again and again).
- custom Data Docs views subclassing `DefaultJinjaPageView` / `DefaultJinjaIndexPageView` (GX
  documents custom views; their constructor and `env` attribute are not documented): each keeps
  the Jinja environment its first instance compiled, instead of one per section and build.
- the CDN URLs in GX's templates and the logo images in its package, replaced by vendored copies
  so that Data Docs work offline (ops/data-docs-assets.json).
- the execution engine's batch manager (`batch.data.execution_engine.batch_manager`, its
  `reset_batch_cache()` and `batch_data_cache`): GX keeps the dataframe of the last batch of every
  asset for the context's life, i.e. every source's last validated tables until the run ends;
  `_forget_batch` lets go of it once the batch is validated.
- `scipy.stats` and `altair`, imported by GX as it loads for one expectation no suite here uses,
  load on first use instead. `importlib.util.LazyLoader` is the documented route, but attribute
  access to a lazily loaded module is not thread-safe before Python 3.12 (CPython gh-114763) and
  validations run in threads: `_LoadedOnFirstUse` takes a lock.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.internals import Internal, package_file
from tasks.settings import PROJECT_ROOT

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
LOCK = threading.Lock()  # GX's context is not thread-safe: every use of it holds this lock
# Data Docs folder -> (validation result, suite) identifiers validated but not yet rendered there
_PENDING_DOCS: dict[Path, list] = {}


@dataclass
class GxResult:
    """One expectation's outcome, as plain values."""

    type: str
    kwargs: dict
    meta: dict
    severity: str  # GX's: critical, warning or info
    success: bool
    result: dict = field(default_factory=dict)
    exception_message: str | None = None


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


# GX's page views, compiling their templates once per process (`_views` below)
_VIEWS = {k: {"module_name": __name__, "class_name": c} for k, c in (("index", "IndexPageView"), ("page", "PageView"))}


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


def validate_frame(
    frame: pd.DataFrame,
    *,
    source: str,
    table: str,
    suite_name: str,
    expectations: list[dict],
    params: dict,
    docs_dir: Path | None = None,
    run_name: str | None = None,
) -> tuple[list[GxResult], str | None]:
    """The expectations' results on `frame` (a failing one with every failing row: see `_validate`),
    and, with `docs_dir`, the page its validation will have in that folder's Data Docs."""
    _import_gx()
    from great_expectations.core import ExpectationSuite

    with LOCK:
        ctx = _context()
        n = next(_COUNTER)
        gx_suite = ExpectationSuite(name=_suite_name(suite_name, n), expectations=expectations)
        batch = _batch_definition(ctx, source, table).get_batch(batch_parameters={"dataframe": frame})
        key = _validation_key(batch, frame, source, expectations, params)
        result = _validate(batch, gx_suite, params, key)
        docs_page = None
        if docs_dir is not None:
            docs_page = _keep_for_docs(ctx, gx_suite, batch.id, result, run_name or source, Path(docs_dir))
        _forget_batch(batch)
    out = []
    for res in result.results:
        cfg = res.expectation_config
        info = res.exception_info or {}
        out.append(
            GxResult(
                type=cfg.type,
                kwargs=dict(cfg.kwargs),
                meta=dict(cfg.meta or {}),
                severity=str(getattr(cfg.severity, "value", cfg.severity)),
                success=bool(res.success),
                result=dict(res.result or {}),
                exception_message=info.get("exception_message") if info.get("raised_exception") else None,
            )
        )
    return out, docs_page


# validation key -> GX result, for the last validations of this process (see _validate)
_RESULTS: OrderedDict[str, Any] = OrderedDict()
RESULTS_KEPT = 64


def _validation_key(batch, frame: pd.DataFrame, source: str, expectations: list, params: dict) -> str | None:
    """What a validation's result depends on: the table (GX's own fingerprint of the batch's values
    and index, with the column names and dtypes, which it leaves out), the expectations and the suite
    parameters. None when GX gave no fingerprint."""
    fingerprint = (batch.batch_markers or {}).get("pandas_data_fingerprint")
    if not fingerprint:
        return None
    what = [source, fingerprint, [str(c) for c in frame.columns], [str(t) for t in frame.dtypes]]
    what += [expectations, params]
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


def _forget_batch(batch) -> None:
    """Let the execution engine drop the batch's dataframe: its batch manager keeps the last batch
    of every asset (`reset_batch_cache` forgets the batch, not its data)."""
    manager = batch.data.execution_engine.batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


def _keep_for_docs(ctx, suite, batch_id: str, result, run_name: str, docs_dir: Path) -> str:
    """Keep a validation's result and its suite in the context's stores for the Data Docs of
    `docs_dir` (what a GX checkpoint run stores, without a checkpoint's bookkeeping, which cost more
    than the validation itself); returns the page the result will have there."""
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


def render_data_docs(docs_dir: Path) -> Path | None:
    """Render the GX Data Docs of the validations `run_suite` ran for `docs_dir` since the last render
    into that folder (index.html, one page per validation and per suite), with the stylesheets,
    scripts and fonts GX loads from CDNs replaced by the vendored copies (`make install`), so that
    they work offline. Returns the index, or None when nothing was pending."""
    docs_dir = Path(docs_dir)
    with LOCK:
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
        logo = package_file("great_expectations", "render/view/static/images")
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


# ------------------------------------------------------------------------------ Data Docs views
_ENVIRONMENTS: dict[tuple, Any] = {}  # (view class, custom styles, custom views) -> Jinja environment
_VIEW_CLASSES: dict[str, type] = {}


def _views() -> dict[str, type]:
    """GX's page and index views, each keeping the Jinja environment its first instance compiled
    (GX makes a new view, with a new environment, for each section of each build). Made on first
    use: GX imports them from this module by name when it renders (`__getattr__`)."""
    if not _VIEW_CLASSES:
        from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

        class _CompiledOnce:
            env: Any
            custom_styles_directory: str | None
            custom_views_directory: str | None

            def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
                key = (type(self), custom_styles_directory, custom_views_directory)
                if key not in _ENVIRONMENTS:
                    super().__init__(custom_styles_directory, custom_views_directory)  # type: ignore[call-arg]
                    _ENVIRONMENTS[key] = self.env
                self.custom_styles_directory = custom_styles_directory
                self.custom_views_directory = custom_views_directory
                self.env = _ENVIRONMENTS[key]

        _VIEW_CLASSES["PageView"] = type("PageView", (_CompiledOnce, DefaultJinjaPageView), {"__module__": __name__})
        _VIEW_CLASSES["IndexPageView"] = type(
            "IndexPageView", (_CompiledOnce, DefaultJinjaIndexPageView), {"__module__": __name__}
        )
    return _VIEW_CLASSES


def __getattr__(name: str):
    if name in ("PageView", "IndexPageView"):
        return _views()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------ what it relies on
def _importable(module: str, *names: str) -> Callable[[], str | None]:
    def check() -> str | None:
        _import_gx()
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            return f"cannot import {module} ({exc})"
        lacking = [n for n in names if not hasattr(mod, n)]
        return f"{module} has no {lacking}" if lacking else None

    return check


def _results_store() -> str | None:
    with LOCK:
        store = getattr(_context(), "validation_results_store", None)
    return None if callable(getattr(store, "set", None)) else f"the context's validation_results_store is {store!r}"


def _fingerprint_marker() -> str | None:
    _import_gx()
    with LOCK:
        batch = _batch_definition(_context(), "_internals", "probe").get_batch(
            batch_parameters={"dataframe": pd.DataFrame({"a": [1, 2]})}
        )
    markers = dict(batch.batch_markers or {})
    return None if markers.get("pandas_data_fingerprint") else f"the batch's markers are {sorted(markers)}"


def _batch_data_released() -> str | None:
    import gc
    import weakref

    _import_gx()
    frame = pd.DataFrame({"a": [1, 2]})
    alive = weakref.ref(frame)
    with LOCK:
        batch = _batch_definition(_context(), "_internals", "probe").get_batch(batch_parameters={"dataframe": frame})
        manager = batch.data.execution_engine.batch_manager
        manager.load_batch_list(batch_list=[batch])  # what batch.validate() does first
        if not manager.batch_data_cache:
            return "the batch manager's batch_data_cache does not hold the loaded batch"
        _forget_batch(batch)
    del frame, batch
    gc.collect()
    return (
        None
        if alive() is None
        else "the dataframe is still referenced after reset_batch_cache() and clearing batch_data_cache"
    )


def _views_compile() -> str | None:
    import jinja2

    _import_gx()
    try:
        view = _views()["PageView"]()
    except TypeError as exc:
        return f"DefaultJinjaPageView(custom_styles_directory, custom_views_directory) fails: {exc}"
    return None if isinstance(getattr(view, "env", None), jinja2.Environment) else "the view has no Jinja `env`"


def _cdn_urls() -> str | None:
    spec = json.loads(ASSETS_SPEC.read_text())
    urls = [url for p in spec["packages"] for url in p["cdn"]]
    templates = package_file("great_expectations", "render/view/templates")
    text = "".join(f.read_text(encoding="utf-8") for f in sorted(templates.glob("*.j2")))
    gone = [u for u in urls if u not in text]
    return f"GX's templates no longer load {gone}" if gone else None


def _logo_images() -> str | None:
    images = package_file("great_expectations", "render/view/static/images")
    return None if list(images.glob("*.png")) else f"no logo images under {images}"


INTERNALS = [
    Internal(
        "great_expectations.core.run_identifier.RunIdentifier",
        "a validation's result is stored for Data Docs as a checkpoint run stores it, without a "
        "checkpoint (its bookkeeping costs more than the validation)",
        _importable("great_expectations.core.run_identifier", "RunIdentifier"),
    ),
    Internal(
        "great_expectations.data_context.types.resource_identifiers: ValidationResultIdentifier, "
        "ExpectationSuiteIdentifier",
        "the keys of the stored result and suite, handed to build_data_docs(resource_identifiers=...)",
        _importable(
            "great_expectations.data_context.types.resource_identifiers",
            "ValidationResultIdentifier",
            "ExpectationSuiteIdentifier",
        ),
    ),
    Internal(
        "context.validation_results_store.set",
        "where a checkpoint run keeps its result; Data Docs render from it",
        _results_store,
    ),
    Internal(
        "batch.batch_markers['pandas_data_fingerprint']",
        "GX's fingerprint of a dataframe keys the cache of results (the same table validated again)",
        _fingerprint_marker,
    ),
    Internal(
        "batch.data.execution_engine.batch_manager: reset_batch_cache(), batch_data_cache",
        "the engine keeps every asset's last dataframe for the context's life; it is let go once validated",
        _batch_data_released,
    ),
    Internal(
        "DefaultJinjaPageView / DefaultJinjaIndexPageView: constructor and `env`",
        "custom views keep their compiled Jinja environment across sections and builds",
        _views_compile,
    ),
    Internal(
        "the CDN URLs in GX's Data Docs templates (ops/data-docs-assets.json)",
        "each is replaced by a vendored copy, so that Data Docs work offline",
        _cdn_urls,
    ),
    Internal(
        "GX's logo images under great_expectations/render/view/static/images",
        "copied beside the Data Docs instead of loading them from GX's S3 bucket",
        _logo_images,
    ),
]
