"""What a person opens first about a refresh, as plain data: the data-quality table across sources,
the warning events (with the release that went out), the labels a failed run carries for its alert.
The parent flow turns these into Prefect artifacts, events and labels."""

from __future__ import annotations

from tasks.errors import DataQualityError
from tasks.secrets import redact

MAX_SHOWN = 20
RANKING_ARTIFACT_ROWS = 1000  # the run's ranking table in Prefect's UI; the release's index.csv has every city


def ranking_rows(index, limit: int | None = RANKING_ARTIFACT_ROWS) -> list[dict]:
    """The ranking as table-artifact rows (a release's index table, best first), its first `limit`
    rows: Prefect's server refuses an event over a few megabytes and its UI pages a table client
    side, so a 100,000-city ranking as an artifact is neither shown nor useful."""
    index = index.sort_values("rank_international", kind="stable")
    if limit is not None:
        index = index.head(limit)
    return [
        {
            "rank": int(r.rank_international),
            "city": r.name_en,
            "城市": r.name_zh,
            "score": round(float(r.final_score), 2),
            "country": r.country,
        }
        for r in index.itertuples()
    ]


def _pairs(check: dict) -> str:
    values = check.get("values") or []
    offending = check.get("offending") or []
    shown = [f"{o} ({v})" for o, v in zip(offending, values, strict=False)] if values else list(map(str, offending))
    return redact(", ".join(shown[:MAX_SHOWN]) + (" …" if len(shown) > MAX_SHOWN else ""))


def quality_rows(reports: dict[str, list[dict]], failed: dict[str, BaseException], docs_url) -> list[dict]:
    """One row per suite of every source (and per failing check): source, suite, checks, passed,
    failed, severity, check, offending rows with their values, what is allowed, its Data Docs page.
    `reports`: source -> ValidationReport.as_dict() of each suite; `failed`: source -> the error that
    stopped it; `docs_url(page)`: the URL of a page of this run's Data Docs."""
    rows = []
    for source, reps in reports.items():
        for r in reps:
            bad = r["errors"] + r["warnings"]
            base = {
                "source": source,
                "suite": r["suite"],
                "checks": r["checks"],
                "passed": r["checks"] - len(bad),
                "failed": len(bad),
                "data docs": docs_url(r.get("docs_page")),
            }
            if not bad:
                rows.append({**base, "severity": "", "check": "all passed", "offending (value)": "", "allowed": ""})
            for c in bad:
                rows.append(
                    {
                        **base,
                        "severity": c["severity"],
                        "check": f"{c['expectation']}({c.get('column') or ''})",
                        "offending (value)": _pairs(c),
                        "allowed": c.get("expected", ""),
                    }
                )
    for source, exc in failed.items():
        if isinstance(exc, DataQualityError):
            for c in exc.failures:
                rows.append(
                    {
                        "source": source,
                        "suite": exc.suite,
                        "checks": None,
                        "passed": None,
                        "failed": len(exc.failures),
                        "data docs": docs_url(exc.docs_page),
                        "severity": "error",
                        "check": f"{c['expectation']}({c.get('column') or ''})",
                        "offending (value)": _pairs(c),
                        "allowed": c.get("expected", ""),
                    }
                )
        else:
            rows.append(
                {
                    "source": source,
                    "suite": "",
                    "checks": None,
                    "passed": None,
                    "failed": None,
                    "data docs": "",
                    "severity": "error",
                    "check": type(exc).__name__,
                    "offending (value)": redact(str(exc))[:300],
                    "allowed": "",
                }
            )
    order = [
        "source",
        "suite",
        "severity",
        "check",
        "offending (value)",
        "allowed",
        "checks",
        "passed",
        "failed",
        "data docs",
    ]
    return [{k: r.get(k) for k in order} for r in rows]


def warning_events(
    reports: dict[str, list[dict]], release_id: str | None, context: dict, docs_url=None, home: str = ""
) -> list[dict]:
    """One event payload per source with warnings, naming the release that went out with them, each
    warning with the Data Docs page of its validation (`docs_url(page)`), and the run's data home."""
    out = []
    for source, reps in reports.items():
        warnings = [
            {
                "suite": r["suite"],
                "expectation": w["expectation"],
                "column": w["column"],
                "offending": [redact(str(o)) for o in w["offending"][:MAX_SHOWN]],
                "values": [redact(str(v)) for v in (w.get("values") or [])[:MAX_SHOWN]],
                "allowed": w.get("expected", ""),
                "data_docs": docs_url(r.get("docs_page")) if docs_url and r.get("docs_page") else "",
            }
            for r in reps
            for w in r["warnings"]
        ]
        if warnings:
            out.append(
                {
                    "source": source,
                    "suite": ", ".join(sorted({w["suite"] for w in warnings})),
                    "warnings": warnings,
                    "release": release_id,
                    "data_home": home,
                    "deployment": context.get("deployment"),
                    "flow_run": context.get("flow_run"),
                    "url": context.get("url"),
                }
            )
    return out


def failure_labels(failed: dict[str, BaseException], docs_url, home: str) -> dict[str, str | int | float | bool]:
    """Labels of a failed refresh for its alert: the first failing source's suite, check, offending
    values, what is allowed, its Data Docs page and the run's data home."""
    labels: dict[str, str | int | float | bool] = {
        "talent-index.data-home": home,
        "talent-index.failed-sources": ", ".join(sorted(failed)),
    }
    for source, exc in failed.items():
        labels["talent-index.failed-source"] = source
        if isinstance(exc, DataQualityError) and exc.failures:
            c = exc.failures[0]
            labels.update(
                {
                    "talent-index.failed-suite": exc.suite,
                    "talent-index.failed-check": f"{c['expectation']}({c.get('column') or ''})",
                    "talent-index.offending": _pairs(c)[:500],
                    "talent-index.allowed": str(c.get("expected", "")),
                    "talent-index.data-docs": docs_url(exc.docs_page),
                }
            )
        else:
            labels["talent-index.failed-check"] = redact(str(exc))[:500]
        break
    return labels
