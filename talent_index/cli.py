"""`talent-index`: run the refresh, debug a parser on a saved page, inspect releases."""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
import traceback
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import quiet_defaults

quiet_defaults()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="City Talent Retention Index (城市人才黏性指数): refresh, parse, releases.",
)
releases_app = typer.Typer(no_args_is_help=True, help="List, show, verify and compare releases.")
app.add_typer(releases_app, name="releases")
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
out = Console(width=None if sys.stdout.isatty() else 200)
STATE = {"debug": False}


def fail(exc: BaseException) -> None:
    """One clear line (the traceback only with --debug), exit code 1."""
    if STATE["debug"]:
        traceback.print_exception(exc)
    from tasks.secrets import redact

    msg = redact(str(exc) or exc.__class__.__name__)
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import version

    from tasks.provenance import code_version

    out.print(f"talent-index {version('city-talent-index')} (code {code_version()})")
    raise typer.Exit(0)


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and the code's commit, then exit."
    ),
):
    STATE["debug"] = debug


@app.command()
def refresh(
    offline: bool = typer.Option(False, "--offline", help="Replay the bundled recordings (no network)."),
    online: bool = typer.Option(False, "--online", help="Fetch from the sources."),
    record: bool = typer.Option(False, "--record", help="Fetch online and save the responses as recordings."),
    source: list[str] | None = typer.Option(None, "--source", "-s", help="Only these sources (repeatable)."),
    edition: str = typer.Option(
        "auto",
        help="Edition of the index: a year, or 'auto' (offline: the newest recorded edition; online: this year).",
    ),
    cadence: str = typer.Option(
        "annual",
        help="'annual' or 'quarterly' (a source's edition policy may differ: "
        "Numbeo's ranking is then the current one).",
    ),
    allow_vintage_fallback: bool = typer.Option(
        False,
        "--allow-vintage-fallback",
        help="Publish even where a source's vintage is not what its policy "
        "expects for the edition (listed in the manifest and report).",
    ),
    no_publish: bool = typer.Option(False, "--no-publish", help="Ingest and snapshot only."),
    wait: bool = typer.Option(False, "--wait", help="Wait for a running refresh instead of refusing."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's run logs."),
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="tcp://HOST:PORT",
        help="Run the per-tile night-light work on this Dask scheduler (needs a real Prefect server: PREFECT_API_URL).",
    ),
):
    """Run the parent flow: ingest every source, validate, snapshot, score, publish a release."""
    chosen = [m for m, on in (("offline", offline), ("online", online), ("record", record)) if on]
    if len(chosen) > 1:
        fail(ValueError(f"choose one of --offline, --online, --record (got {', '.join(chosen)})"))
    mode = chosen[0] if chosen else "offline"

    if dask:  # before anything starts: the night-light subflow would only find out after the others
        from tasks.service.prefect_api import require_real_server

        try:
            require_real_server(dask)
        except Exception as exc:  # noqa: BLE001
            fail(exc)

    # without -v the console shows our progress and one-line errors, not the engine's tracebacks
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    from tasks.progress import set_reporter
    from tasks.timing import write_if_asked as write_timings

    with err.status(f"refresh ({mode}): starting Prefect…", spinner="dots") as status:
        last = [0.0]

        def show(message: str, transient: bool) -> None:
            now = time.monotonic()
            if transient and now - last[0] < 0.1:
                return  # at most 10 status redraws a second: one per request adds up over 20,000 requests
            last[0] = now
            status.update(f"refresh ({mode}): {escape(message)}")
            if not transient:
                err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}", highlight=False)

        set_reporter(show)
        try:
            from tasks.service.prefect_api import on_the_temporary_server, start_temporary_server

            server = start_temporary_server()  # comes up while the flows are imported
            from flows.refresh import refresh as refresh_flow

            with on_the_temporary_server(server):
                result = refresh_flow(
                    mode=mode,
                    sources=source,
                    edition=edition,
                    cadence=cadence,
                    allow_vintage_fallback=allow_vintage_fallback,
                    publish_release=not no_publish,
                    wait_for_lock=wait,
                    dask_address=dask,
                )
        except Exception as exc:  # noqa: BLE001
            set_reporter(None)
            write_timings()
            fail(exc)
        set_reporter(None)
        write_timings()
    for s, ws in result.get("warnings", {}).items():
        for w in ws:
            err.print(
                "[yellow]warning:[/] "
                + escape(f"{s}: {w['expectation']} {w.get('column') or ''}: {', '.join(w['offending'][:10])}"),
                highlight=False,
            )
    _print_release(result.get("release"))
    if not result.get("release"):
        out.print(
            f"ingested (edition {result['edition']}): "
            + ", ".join(
                f"{s} → {r['snapshot']['snapshot_id']} (vintage {r['vintage']['found']})"
                for s, r in result["sources"].items()
            )
        )


def _print_release(rel: dict | None) -> None:
    if not rel:
        return
    what = "unchanged inputs: release" if rel["reused"] else "published release"
    out.print(f"{what} [bold]{rel['release_id']}[/] (edition {rel['edition']}){' (SAMPLE)' if rel['sample'] else ''}")
    out.print(f"  {rel['path']}")
    for f in rel.get("vintage_fallbacks", []):
        err.print(
            "[yellow]vintage fallback:[/] "
            + escape(f"{f['source']}: expected {f['expected']}, used {f['found']} ({f['reason']})"),
            highlight=False,
        )
    if rel.get("latest") and rel["latest"] != rel["release_id"]:
        out.print(f"  LATEST stays {rel['latest']} (the latest release of the newest edition)")


def _editions(spec: str) -> list[str]:
    """'2019,2020' or '2018-2020' -> ['2018', '2019', '2020']."""
    from tasks.store.editions import check_edition

    out: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if "-" in part:
            lo, hi = (check_edition(x.strip()) for x in part.split("-", 1))
            if int(lo) > int(hi):
                raise ValueError(f"edition range {part!r} runs backwards")
            out += [str(y) for y in range(int(lo), int(hi) + 1)]
        else:
            out.append(check_edition(part))
    if not out:
        raise ValueError("no edition given (e.g. --editions 2019,2020 or 2018-2020)")
    return sorted(dict.fromkeys(out))


@app.command()
def backfill(
    editions: str = typer.Option(
        ..., "--editions", help="Editions to publish, oldest first: '2019,2020' or a range '2018-2020'."
    ),
    offline: bool = typer.Option(False, "--offline", help="Replay the recordings of each edition (default)."),
    online: bool = typer.Option(False, "--online", help="Fetch each edition from the sources."),
    allow_vintage_fallback: bool = typer.Option(
        False, "--allow-vintage-fallback", help="Publish even where a source's vintage is not the policy's."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's run logs."),
):
    """Publish one release per edition, in order: each carries the history of the editions before it."""
    if offline and online:
        fail(ValueError("choose one of --offline, --online"))
    mode = "online" if online else "offline"
    try:
        years = _editions(editions)
        from tasks.store.editions import resolve_edition

        for e in years:  # every edition must exist before the first one is published
            resolve_edition(e, mode)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    from tasks.service.prefect_api import on_the_temporary_server, start_temporary_server

    server = start_temporary_server()  # comes up while the flows are imported
    from flows.refresh import refresh as refresh_flow
    from tasks.progress import set_reporter

    set_reporter(
        lambda m, transient: (
            None if transient else err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(m)}", highlight=False)
        )
    )
    for n, e in enumerate(years, start=1):
        err.print(f"[bold]edition {e}[/] ({n}/{len(years)})")
        try:
            with on_the_temporary_server(server):
                result = refresh_flow(mode=mode, edition=e, allow_vintage_fallback=allow_vintage_fallback)
        except Exception as exc:  # noqa: BLE001
            set_reporter(None)
            fail(RuntimeError(f"backfill stopped at edition {e} ({n - 1} of {len(years)} published): {exc}"))
        _print_release(result.get("release"))
    set_reporter(None)


home_app = typer.Typer(no_args_is_help=True, help="The data home (TALENT_INDEX_HOME).")
app.add_typer(home_app, name="home")


@home_app.command("migrate")
def home_migrate():
    """Rewrite a data home written by an older version: relative paths, ingest and release logs."""
    from tasks.settings import data_home
    from tasks.store.home import home_format, migrate
    from tasks.store.storage import refresh_lock

    try:
        if home_format(data_home()) is None:  # before the lock, which would create the folder
            migrate()  # says there is nothing to migrate
        with refresh_lock():
            lines = migrate()
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    for line in lines:
        out.print(line)


MAX_FILE_BYTES = 200 * 1024 * 1024  # what `parse` and `curated check` read of a file (the fetcher caps bodies)


def _parse_kinds() -> dict[str, tuple[str, str]]:
    """kind -> (source, what it reads), from every configured source's declaration."""
    from tasks.sources import all_sources

    return {k: (name, what) for name, spec in all_sources().items() for k, what in spec.parse_kinds.items()}


@app.command()
def parse(
    kind: str = typer.Argument(..., help="A parser kind (`talent-index parse --list` shows them).", show_default=False),
    file: Path = typer.Argument(..., help="A saved response."),
):
    """Run one parser on a saved response and print the parsed table as CSV on stdout."""
    from tasks.registry.cities import load_registry
    from tasks.sources import source_spec

    try:
        kinds = _parse_kinds()
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if kind not in kinds:
        fail(ValueError(f"unknown kind {kind!r}; expected one of: " + ", ".join(kinds)))
    from tasks.settings import read_capped

    try:
        body = read_capped(file, MAX_FILE_BYTES, "saved response")
    except OSError as exc:
        fail(OSError(f"cannot read {file}: {exc.strerror}"))
    except ValueError as exc:
        fail(exc)
    try:
        spec, registry = source_spec(kinds[kind][0]), load_registry()
        df = spec.parse_file(kind, body, str(file), registry)
        notes = spec.parse_file_notes(kind, df, registry)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    sys.stdout.write(df.to_csv(index=False))
    for line in notes:
        err.print(escape(line), highlight=False, soft_wrap=True)


@releases_app.command("list")
def releases_list():
    """All releases, oldest first; LATEST is marked."""
    from tasks.store.releases import latest_by_edition, read_latest_id, releases_dir, scan_releases

    rels, damaged = scan_releases()
    for rid, why in damaged:
        err.print(f"[red]damaged:[/] {escape(rid)}: {escape(why)}", highlight=False)
    if not rels:
        out.print(f"no readable releases under {releases_dir()}" + (f" ({len(damaged)} damaged)" if damaged else ""))
        return
    latest = read_latest_id()
    current = set(latest_by_edition().values())
    t = Table(
        "release", "created (UTC)", "edition", "sample", "methodology", "weights", "cities", "fallbacks", "latest"
    )
    for m in rels:
        mark = "LATEST" if m["release_id"] == latest else ("latest of edition" if m["release_id"] in current else "")
        t.add_row(
            m["release_id"],
            m["created_at"],
            str(m["edition"]),
            "yes" if m["sample"] else "no",
            m["methodology"]["version"],
            m["dimension_weights"]["mode"],
            str(m["coverage"]["cities"]),
            str(len(m.get("vintage_fallbacks", []))),
            mark,
        )
    out.print(t)


@releases_app.command("show")
def releases_show(
    release_id: str | None = typer.Argument(None, help="Release id (default: LATEST)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
):
    """A release's manifest summary and its ranking."""
    import pandas as pd

    from tasks.store.releases import read_latest_id, read_manifest, require_intact

    try:
        rid = release_id or read_latest_id() or ""
        path = require_intact(rid, ["index.parquet"])  # (a missing release id is refused by name there)
        manifest = read_manifest(path)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        return
    if manifest["sample"]:
        out.print(f"[bold yellow]{escape(manifest['notice'])}[/]")
    out.print(
        f"release [bold]{manifest['release_id']}[/]  created {manifest['created_at']}  "
        f"code {manifest['code_version']}  methodology {manifest['methodology']['version']}"
    )
    out.print(f"path {path}")
    out.print(
        f"edition {manifest['edition']}; inputs: "
        + "; ".join(
            f"{i['source']} {i['snapshot_id']} (vintage {i.get('vintage', i['edition'])})" for i in manifest["inputs"]
        )
    )
    for f in manifest.get("vintage_fallbacks", []):
        out.print(
            f"[yellow]vintage fallback:[/] {escape(f['source'])}: expected {escape(str(f['expected']))}, "
            f"used {escape(str(f['found']))} ({escape(f['reason'])})"
        )
    for i in manifest["inputs"]:
        for note in i.get("vintage_notes") or []:
            out.print(f"vintage note: {escape(i['source'])}: {escape(note)}")
    out.print(
        "dimension weights ("
        + manifest["dimension_weights"]["mode"]
        + "): "
        + ", ".join(f"{k} {v:.3f}" for k, v in manifest["dimension_weights"]["weights"].items())
    )
    out.print("values: " + ", ".join(f"{k} {v}" for k, v in manifest["coverage"]["values_by_status"].items()))
    idx = pd.read_parquet(path / "index.parquet")  # checked against the manifest above
    t = Table("rank", "city", "城市", "score", "country", "domestic rank")
    for r in idx.itertuples():
        t.add_row(
            str(r.rank_international),
            r.name_en,
            r.name_zh,
            f"{r.final_score:.2f}",
            r.country,
            "" if pd.isna(r.rank_domestic) else str(r.rank_domestic),
        )
    out.print(t)


@releases_app.command("verify")
def releases_verify(release_id: str | None = typer.Argument(None, help="Release id (default: LATEST).")):
    """Check every file of a release against the sha256 in its manifest."""
    from tasks.store.releases import read_latest_id, verify_release

    try:
        rid = release_id or read_latest_id()
        if rid is None:
            raise ValueError("no release yet: run `talent-index refresh` first")
        bad = verify_release(rid)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if bad:
        fail(RuntimeError(f"release {rid}: files differ from the manifest: {bad}"))
    out.print(f"release {rid}: every file matches its manifest checksum")


@releases_app.command("diff")
def releases_diff(
    old: str = typer.Argument(..., help="Older release id."), new: str = typer.Argument(..., help="Newer release id.")
):
    """Rank and score changes per city, new and dropped cities, changed inputs (as Markdown)."""
    from tasks.report.changes import changes_markdown, diff_releases
    from tasks.store.releases import require_intact

    try:
        d = diff_releases(require_intact(old, ["index.parquet"]), require_intact(new, ["index.parquet"]))
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    sys.stdout.write(changes_markdown(d, new))


@app.command()
def report(
    release_id: str | None = typer.Argument(None, help="Release id (default: LATEST)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the report into."),
):
    """Rebuild a release's HTML report into another folder (releases themselves are never modified)."""
    from tasks.report.render import render_release
    from tasks.settings import refuse_protected
    from tasks.store.releases import read_latest_id, require_intact

    try:
        path = require_intact(release_id or read_latest_id() or "")  # every file it reads, checked first
        output = refuse_protected(output, "--output")
        written = render_release(path, output)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    out.print(f"wrote {len(written)} files; open {output / 'index.html'}")


def _print_frame(df, title: str) -> None:
    t = Table(*[str(c) for c in df.columns], title=title)
    for row in df.itertuples(index=False):
        t.add_row(
            *[
                ""
                if v is None or (isinstance(v, float) and v != v)
                else (f"{v:.4g}" if isinstance(v, float) else str(v))
                for v in row
            ]
        )
    out.print(t)


curated_app = typer.Typer(no_args_is_help=True, help="The curated table of report-sourced indicators.")
app.add_typer(curated_app, name="curated")


@curated_app.command("check")
def curated_check(file: Path = typer.Argument(..., help="A curated CSV to validate before committing it.")):
    """Validate a curated table: columns, provenance of every value, units, ranges, completeness."""
    from tasks.ingest.core import validate_source
    from tasks.registry.cities import load_registry
    from tasks.settings import read_capped
    from tasks.sources import load_sources_raw, resolve_source, source_spec
    from tasks.sources.base import Request
    from tasks.store.editions import default_edition

    try:
        body = read_capped(file, MAX_FILE_BYTES, "curated table")
    except OSError as exc:
        fail(OSError(f"cannot read {file}: {exc.strerror}"))
    except ValueError as exc:
        fail(exc)
    try:
        registry = load_registry()
        cfg = resolve_source("curated", load_sources_raw()["curated"], default_edition())
        spec = source_spec("curated")
        table = spec.parse_file("curated-table", body, str(file), registry)
        tidy = spec.tidy(cfg, registry, {Request("curated-table", str(file)): table})
        reports = validate_source("curated", {**cfg, "change_warning_share": 1e9}, registry, tidy, {"table": table})
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    for r in reports:
        for c in r.errors + r.warnings:
            colour = "red" if c.severity == "error" else "yellow"
            what = ", ".join(map(str, c.offending[:10])) or f"observed {c.observed}"
            err.print(
                f"[{colour}]{c.severity}:[/] " + escape(f"{r.suite}: {c.expectation}({c.column or ''}): {what}"),
                highlight=False,
            )
    n_err = sum(len(r.errors) for r in reports)
    if n_err:
        fail(RuntimeError(f"{file}: {n_err} failed checks; fix them before committing the table"))
    out.print(
        f"{file}: {len(table)} rows ({int(table['value'].notna().sum())} values, "
        f"{int((table['status'] == 'missing').sum())} marked missing) for {table['city_id'].nunique()} cities pass "
        f"{sum(len(r.results) for r in reports)} checks"
    )


@curated_app.command("template")
def curated_template(
    edition: str = typer.Option(..., "--edition", help="The edition the new table is for (a year)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write it (default: the file the configuration names for the edition)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
):
    """Start the curated table of a new edition from the newest one: every row carried forward with
    its own publication and vintage and marked `carried_from`, for a person to update. A release
    built on carried rows lists each as a vintage fallback."""
    from tasks.settings import read_capped, refuse_protected
    from tasks.sources import load_sources_raw, resolve_source, source_spec
    from tasks.store.editions import check_edition
    from tasks.store.storage import atomic_write_text

    try:
        edition = check_edition(edition)
        raw = load_sources_raw()["curated"]
        target = output or Path(str(resolve_source("curated", raw, edition)["url"]).removeprefix("file:"))
        refuse_protected(target, "--output")
        if target.exists() and not force:
            raise ValueError(f"{target} exists: choose another --output, or --force to replace it")
        spec = source_spec("curated")
        from_edition, source_path, carried = spec.template(  # type: ignore[attr-defined]
            raw, edition, lambda p: read_capped(p, MAX_FILE_BYTES, "curated table")
        )
        if target.resolve() == Path(source_path).resolve():
            raise ValueError(f"{target} is the table it is made from")
        atomic_write_text(target, carried.to_csv(index=False))
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    out.print(
        f"{target}: {len(carried)} rows of the edition {from_edition} table ({source_path}) carried forward, each with "
        f"its own publication and vintage and carried_from={from_edition}. Update the values you can (clear "
        f"carried_from on each row you update or confirm), then `talent-index curated check {target}`."
    )


sources_app = typer.Typer(no_args_is_help=True, help="The sources: what a run would read, and what they offer.")
app.add_typer(sources_app, name="sources")


def print_preflight(plans, title: str) -> None:
    t = Table("source", "vintage", "reads first", "missing", title=title, show_lines=True)
    for col in t.columns:
        col.overflow = "fold"
    for p in plans:  # SourcePlan.as_dict() each
        reads = "\n".join(p["reads"]) + (f"\n… +{p['more']} more" if p["more"] else "")
        vintage = p["vintage"] + (f"\n{p['note']}" if p["note"] else "") + "".join(f"\n{n}" for n in p["notes"])
        t.add_row(
            escape(p["source"]),
            escape(vintage),
            escape(reads),
            "[red]" + escape("\n".join(p["missing"])) + "[/]" if p["missing"] else "[green]nothing[/]",
        )
    out.print(t)
    out.print("[dim]reads first: the requests a run starts with; the others follow from their answers[/]")


@sources_app.command("check")
def sources_check(
    edition: str = typer.Option("auto", help="A year, or 'auto' (this year; quarterly: the latest release's)."),
    cadence: str = typer.Option("annual", help="'annual' or 'quarterly'."),
    offline: bool = typer.Option(False, "--offline", help="Check what an offline run would replay instead."),
    source: list[str] | None = typer.Option(None, "--source", "-s", help="Only these sources (repeatable)."),
):
    """Preflight, without a request: each source's policy for the edition, the vintage it will read,
    its first URLs or files, and what is missing (a secret, a URL, a curated file). Exit 1 when a run
    could not publish."""
    from tasks.ingest.preflight import preflight
    from tasks.store.editions import resolve_edition

    mode = "offline" if offline else "online"
    try:
        edition = resolve_edition(edition, mode, cadence)
        plans = [p.as_dict() for p in preflight(edition, cadence, mode, source)]
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    print_preflight(plans, f"edition {edition} ({cadence}, {mode}): what each source would read")
    blocked = [p["source"] for p in plans if not p["ready"]]
    if blocked:
        fail(RuntimeError(f"edition {edition} could not be published: {', '.join(blocked)} cannot run (see above)"))
    out.print(f"edition {edition}: every source can run")


@sources_app.command("discover")
def sources_discover(
    source: str = typer.Argument(..., help="The source (hurun: the lists its rank page offers)."),
    file: Path | None = typer.Option(None, "--file", help="A saved copy of the page instead of fetching it."),
):
    """What a source offers that the configuration may not know yet (Hurun: every list with its num)."""
    from tasks.http import Fetcher, HttpPolicy
    from tasks.settings import read_capped
    from tasks.sources import load_sources_raw, source_spec

    try:
        raw = load_sources_raw()
        if source not in raw:
            raise ValueError(f"unknown source {source!r}; configured: {sorted(raw)}")
        cfg = raw[source]
        spec = source_spec(source, cfg)
        if file is not None:
            body = read_capped(file, MAX_FILE_BYTES, "saved page")
            found = spec.discover(cfg, lambda url: body)
        else:
            fetcher = Fetcher(
                source=source, mode="online", policy=HttpPolicy.from_config(cfg.get("http")), reuse_raw=False
            )
            found = spec.discover(cfg, lambda url: fetcher.get(url).read())
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    t = Table(*found.columns, title=f"{source}: offered ({file or spec.discover_url(cfg)})")
    for row in found.astype(str).itertuples(index=False):
        t.add_row(*(escape(v) for v in row))
    out.print(t)
    if "configured" in found.columns:
        new = found[found["configured"] == ""]
        for r in new.itertuples():
            out.print(
                f"not configured: {escape(r.label)} — add under {source}.lists: "
                f'"{r.year}": {{num: {r.num}, year: {r.year}, kind: {r.kind}, known_from: "sources discover"}}'
            )


cities_app = typer.Typer(no_args_is_help=True, help="The city registry.")
app.add_typer(cities_app, name="cities")


@cities_app.command("build")
def cities_build(
    numbeo: Path = typer.Option(..., "--numbeo", help="A saved Numbeo ranking page (the registry's city list)."),
    gawc: Path | None = typer.Option(None, "--gawc", help="A GaWC connectivity sheet (XLSX or CSV)."),
    hurun: list[Path] | None = typer.Option(
        None,
        "--hurun",
        help="A Hurun unicorn list: a saved API answer (repeat --hurun for each page of one list), HTML, CSV or XLSX.",
    ),
    base: Path | None = typer.Option(None, "--base", help="A registry whose rows are kept as they are."),
    output: Path = typer.Option(..., "--output", "-o", help="The registry to write (never --base)."),
    review: Path | None = typer.Option(
        None, "--review", help="Where to write the review rows (default OUTPUT.review.csv)."
    ),
    min_population: int = typer.Option(15_000, "--min-population", help="Smallest GeoNames city to match."),
    min_sources: int = typer.Option(1, "--min-sources", help="Keep a city listed by at least this many of the lists."),
    numbeo_cities_only: bool = typer.Option(
        False, "--numbeo-cities-only", help="Keep only cities Numbeo's list has (the others' names still join them)."
    ),
    radius_base: float = typer.Option(10.0, help="Boundary radius (km) of a city of 100,000 people."),
    radius_per_decade: float = typer.Option(5.0, help="Radius added (km) per tenfold population."),
    domestic: str = typer.Option("CN", help="ISO code of the country whose cities are 'domestic'."),
):
    """Build a registry from the sources' own city lists: names reconciled with GeoNames (country and
    US state as hard constraints), coordinates and boundary radius from GeoNames, every uncertain
    decision in the review file."""
    import pandas as pd

    from tasks.registry.build import Radius, build_registry, registry_columns
    from tasks.settings import refuse_protected
    from tasks.sources import all_sources, read_city_list
    from tasks.store.storage import atomic_write_text

    try:
        review = review or output.with_name(output.stem + ".review.csv")
        refuse_protected(output, "--output")
        refuse_protected(review, "--review")
        if base is not None and output.resolve() == base.resolve():
            raise ValueError(f"--output {output} is the --base registry: write the new registry elsewhere")
        if min_sources < 1 or min_sources > 1 + (gawc is not None) + bool(hurun):
            raise ValueError(f"--min-sources {min_sources}: expected 1 to the number of lists given")
        base_rows = None
        if base is not None:
            from tasks.registry.cities import load_registry

            load_registry(base)  # a broken base is refused with its own message
            base_rows = pd.read_csv(base, dtype=str, keep_default_na=False)
        columns = registry_columns(list(all_sources().values()), base_rows)  # every configured source's columns
        t0 = time.perf_counter()
        lists = [read_city_list("numbeo", numbeo)]
        lists += [read_city_list("gawc", gawc)] if gawc else []
        lists += [read_city_list("hurun", list(hurun))] if hurun else []
        with err.status("matching names with GeoNames…"):
            res = build_registry(
                lists,
                base_rows,
                min_population=min_population,
                min_sources=min_sources,
                radius=Radius(radius_base, radius_per_decade),
                domestic=domestic.upper(),
                progress=lambda m: err.print(escape(m)),
                only_listed_by="numbeo" if numbeo_cities_only else None,
                columns=columns,
            )
        from tasks import csvsafe
        from tasks.registry.cities import load_registry

        # the review first: it explains what was decided, also when the registry cannot be written
        atomic_write_text(review, csvsafe.to_csv(res.review, index=False))
        if res.registry.empty:
            raise ValueError(
                f"{output}: no name of the lists matched a GeoNames city ({res.stats['listed']} listed, "
                f"{res.stats['unmatched']} unmatched): nothing written; why each was left out is in {review}"
            )
        text = csvsafe.to_csv(res.registry, index=False)
        staged = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            staged.write_text(text, encoding="utf-8")
            load_registry(staged)  # what is written must load as a registry
        except ValueError as exc:
            raise ValueError(
                f"{output}: the registry built would not load ({str(exc).replace(str(staged), str(output))}); "
                f"nothing written to it; the review rows are in {review}"
            ) from None
        finally:
            staged.unlink(missing_ok=True)
        atomic_write_text(output, text)
        elapsed = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    st = res.stats
    out.print(
        f"{output}: {len(res.registry)} cities ({st['base']} from the base, {st['new']} new); "
        f"{st['listed']} names listed: {st['matched']} matched to GeoNames, {st['in_base']} found in the base, "
        f"{st['unmatched']} unmatched; {len(res.review)} review rows in {review} ({elapsed:.1f} s)"
    )


server_app = typer.Typer(no_args_is_help=True, help="Run the pipeline as a service on a local Prefect server.")
app.add_typer(server_app, name="server")


@server_app.command("up")
def server_up(
    port: int = typer.Option(4200, help="Port of the Prefect server on 127.0.0.1."),
    database_url: str | None = typer.Option(
        None,
        envvar="TALENT_INDEX_DATABASE_URL",
        help="PostgreSQL URL (postgresql+asyncpg://…); default SQLite (or the file remembered from the last start).",
    ),
    database_url_file: Path | None = typer.Option(
        None, help="A file outside the repository holding the database URL (remembered by path, read at each start)."
    ),
    new_database: bool = typer.Option(
        False, "--new-database", help="Start on another database than the last `server up` used."
    ),
    notify: str = typer.Option(
        "webhook",
        help="Alert through 'webhook' (TALENT_INDEX_WEBHOOK_URL), 'slack' (TALENT_INDEX_SLACK_WEBHOOK_URL) or 'none'.",
    ),
    files_port: int = typer.Option(4201, help="Port of the files server (releases and Data Docs) on 127.0.0.1."),
    files_url: str | None = typer.Option(
        None, help="Base URL the UI's links use for those files (default http://127.0.0.1:FILES_PORT)."
    ),
):
    """Start the server, create the work pool, deploy prefect.yaml, apply the automations, start a
    worker and the files server."""
    from tasks.service import ops

    try:
        info = ops.up(
            port,
            database_url,
            None if notify == "none" else notify,
            progress=lambda m: err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(m)}"),
            database_url_file=database_url_file,
            new_database=new_database,
            files_port=files_port,
            files_url=files_url,
        )
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    out.print(f"Prefect UI: {info['ui_url']}  (API {info['api_url']}, database {info['database_url']})")
    out.print(f"releases and Data Docs: {info['files_url']}")
    out.print(
        "automations: "
        + (", ".join(f"{n} ({how})" for n, how in info["automations"].items()) or "none")
        + "; stop with `talent-index server down`, check with `talent-index server status`"
    )


@server_app.command("down")
def server_down():
    """Stop the worker, the files server, then the server."""
    from tasks.service import ops

    for line in ops.down():
        out.print(line)


@server_app.command("status")
def server_status():
    """Server, worker, pool, deployments with their schedules and next runs, the last run of each."""
    from tasks.service import ops

    try:
        st = ops.status()
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    t = Table("part", "state", title=f"talent-index service ({st['ui_url']})")
    t.add_row("server", f"up, pid {st['processes']['server']['pid']}, database {st['database_url']}")
    for name in ("worker", "files"):
        p = st["processes"][name]
        t.add_row(
            name,
            f"{'up' if p['alive'] else 'DOWN'}, pid {p['pid']}" + (f", {st['files_url']}" if name == "files" else ""),
        )
    t.add_row("work pool", ", ".join(st["pools"]) or "none")
    t.add_row("data home", st.get("data_home", "?"))
    out.print(t)
    d = Table("deployment", "schedule", "next runs", "last run", title="Deployments")
    for dep in st["deployments"]:
        d.add_row(dep["name"], dep["schedule"], dep["next runs"], dep["last run"])
    out.print(d)
    if st.get("preflight"):
        pf = st["preflight"]
        print_preflight(
            pf["plans"],
            f"next scheduled run: {pf['deployment']} at {pf['at']}, edition {pf['edition']}",
        )
        blocked = [p["source"] for p in pf["plans"] if not p["ready"]]
        if blocked:
            err.print(
                "[yellow]warning:[/] "
                + escape(f"that run could not publish as configured today: {', '.join(blocked)} (see above)"),
                highlight=False,
            )
    down = [n for n, p in st["processes"].items() if not p["alive"]]
    if down:
        fail(
            RuntimeError(
                f"the service is up but {', '.join(down)} is not running: `talent-index server down`, then `server up`"
            )
        )


automations_app = typer.Typer(no_args_is_help=True, help="Alerting automations (ops/automations.yaml).")
app.add_typer(automations_app, name="automations")


@automations_app.command("apply")
def automations_apply(notify: str = typer.Option("webhook", help="'webhook' or 'slack'.")):
    """Upsert the automations by name on the server PREFECT_API_URL points to (unchanged ones are
    left alone, keeping their ids and the proactive window)."""
    from tasks.service.alerts import apply_automations

    try:
        done = apply_automations(notify)
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    out.print("automations: " + ", ".join(f"{n} ({how})" for n, how in done.items()))


@app.command("audit-2020")
def audit_2020_cmd(
    release_id: str | None = typer.Argument(
        None,
        help="A release of the printed edition whose real values the variant comparison scores (default: the latest).",
    ),
    as_csv: bool = typer.Option(False, "--csv", help="Print the checks as CSV."),
):
    """Recompute what the 2020 report's own figures allow; list agreements and discrepancies, and
    which method variant reproduces the printed ecology scores on a release's real values."""
    from scoring import load_methodology
    from tasks.publish.analysis import audit_checks, load_published, variant_table
    from tasks.store.releases import latest_by_edition, read_release_file, release_path

    try:
        checks = audit_checks()
        printed = str(load_published()["edition"])
        rid = release_id or latest_by_edition().get(printed)
        variants, why = None, f"no release of edition {printed} to score the variants on (publish one first)"
        if rid:
            own = release_path(rid) / "methodology.yaml"
            coverage = read_release_file(rid, "coverage.csv")
            variants = variant_table(coverage, load_methodology(own if own.exists() else None))
            why = f"release {rid} holds too few real values of vintage {printed}"
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_csv:
        sys.stdout.write(checks.to_csv(index=False))
        return
    _print_frame(checks, "Audit of the 2020 report's printed figures")
    bad = checks[~checks["agrees"]]
    out.print(
        f"{len(checks)} checks: {len(checks) - len(bad)} agree, {len(bad)} discrepancies (reported, not fitted away)"
    )
    if variants is None:
        out.print(f"variant comparison: {why}")
    else:
        _print_frame(
            variants, f"Which method variant reproduces the printed ecology scores (real values of release {rid})"
        )


@app.command()
def fidelity(
    release_id: str | None = typer.Argument(None, help="Release id (default: LATEST)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the table as CSV."),
):
    """Distance of a release to the published index of its edition: Spearman's rho and mean absolute
    difference per scope (final score, each dimension), the largest differences, and the share of
    real / proxy / illustrative / imputed inputs behind each scope."""
    from tasks.store.releases import read_latest_id, read_manifest, read_release_file, release_path

    try:
        path = release_path(release_id or read_latest_id() or "")
        manifest = read_manifest(path)
        info = manifest.get("fidelity") or {}
        if not info.get("file"):
            out.print(
                f"release {path.name} (edition {manifest['edition']}): "
                + (info.get("note") or "no fidelity table in this release (published before it existed)")
            )
            return
        table = read_release_file(path.name, info["file"])
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    if as_csv:
        sys.stdout.write(table.to_csv(index=False))
        return
    _print_frame(
        table.drop(columns=["inputs_by_indicator"], errors="ignore"),
        f"Release {path.name} against {info['compared_with']}",
    )
    for f in table.itertuples():
        if f.scope != "final" and isinstance(getattr(f, "inputs_by_indicator", None), str):
            out.print(f"{escape(f.scope)}: {escape(f.inputs_by_indicator)}", highlight=False)
    final = table[table["scope"] == "final"]
    if len(final):
        f = final.iloc[0]
        out.print(
            f"final score: Spearman rho {f['spearman_rho']:.2f}, mean absolute difference {f['mae']:.2f} points "
            f"over {int(f['cities'])} cities; inputs {f['share_real']:.0%} real, {f['share_proxy']:.0%} proxy, "
            f"{f['share_illustrative']:.0%} illustrative, {f['share_imputed']:.0%} imputed"
        )


@app.command()
def uncertainty(
    release_id: str | None = typer.Argument(None, help="Release id (default: LATEST)."),
    draws: int = typer.Option(10_000, help="Monte Carlo draws (rounded up to a multiple of 16)."),
    seed: int = typer.Option(2020, help="Random seed (same seed, same result)."),
    concentration: float = typer.Option(100.0, help="Dirichlet concentration around the chosen weights."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the rank table as CSV."),
):
    """Monte Carlo over the modelling choices: median rank and 5-95% interval of every city."""
    import pandas as pd

    from scoring import load_methodology
    from scoring.uncertainty import monte_carlo
    from tasks.settings import refuse_protected
    from tasks.store.releases import read_latest_id, require_intact

    try:
        if draws < 1:
            raise ValueError(f"--draws {draws}: expected a positive number of draws")
        if output:
            refuse_protected(output, "--output")
        path = require_intact(release_id or read_latest_id() or "", ["indicators.parquet"])
        ind = pd.read_parquet(path / "indicators.parquet")
        values = ind.assign(value=ind["value"].where(~ind["imputed"])).pivot(
            index="city_id", columns="indicator", values="value"
        )
        with err.status(f"{draws} draws…"):
            t0 = time.perf_counter()
            res = monte_carlo(values, load_methodology(), draws=draws, seed=seed, concentration=concentration)
            elapsed = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        fail(exc)
    table = res.ranks.reset_index()
    _print_frame(table, f"Rank uncertainty, release {path.name} ({res.draws} draws, seed {seed})")
    _print_frame(res.shares, "First-order share of the rank variance")
    err.print(f"{res.draws} draws in {elapsed:.3f} s")
    if output:
        from tasks.store.storage import atomic_write_text

        atomic_write_text(output, table.to_csv(index=False))


_EXIT_STATUS = 1  # an uncaught exception ends with status 1, as Python's own exit does


def _leave_without_teardown() -> None:
    """The last exit handler: leave without the interpreter's teardown of every module and object
    (seconds once prefect, GX and pandas are loaded, and nothing of ours needs it). It runs after
    Prefect has drained its event and log workers (thread exit hooks) and after every other exit
    handler (logging, the temporary server's shutdown)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe: nothing left to flush
            pass
    os._exit(_EXIT_STATUS)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a deployment cancelled, a service stopped): unwinds like Ctrl-C, so that temporary
    folders are removed, the refresh lock released and the temporary Prefect server stopped."""


_SIGNALLED = {"term": False}


def _on_sigterm(signum, frame) -> None:
    _SIGNALLED["term"] = True
    raise Terminated()


def _interrupted(term: bool) -> None:
    """One line saying what was interrupted and that nothing earlier was touched."""
    from tasks.progress import last_step

    try:
        from tasks.store.releases import read_latest_id

        latest = read_latest_id()
    except Exception:  # noqa: BLE001 - a message, whatever the state of the data home
        latest = None
    what = "SIGTERM" if term else "Ctrl-C"
    step = last_step()
    err.print(
        f"[bold red]interrupted[/] ({what})"
        + (f" during: {escape(step)}" if step else "")
        + f"; nothing half-written was kept; LATEST still names {escape(str(latest))}",
        highlight=False,
        soft_wrap=True,
    )


def main():
    global _EXIT_STATUS
    import signal

    atexit.register(_leave_without_teardown)  # registered first, so it runs last
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
        _EXIT_STATUS = 0
    except SystemExit as exc:
        _EXIT_STATUS = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if _EXIT_STATUS == 130 or _SIGNALLED["term"]:  # typer turns an interruption into exit 130
            _EXIT_STATUS = 143 if _SIGNALLED["term"] else 130
            _interrupted(_SIGNALLED["term"])
        raise
    except KeyboardInterrupt:
        _EXIT_STATUS = 143 if _SIGNALLED["term"] else 130
        _interrupted(_SIGNALLED["term"])


if __name__ == "__main__":
    main()
