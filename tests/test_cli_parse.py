"""`talent-index parse KIND FILE`: the contract used by tests and by maintainers."""

import io

import pandas as pd
from typer.testing import CliRunner

from talent_index.cli import app

runner = CliRunner()


def parse(kind, path):
    result = runner.invoke(app, ["parse", kind, str(path)])
    return result, (pd.read_csv(io.StringIO(result.stdout)) if result.exit_code == 0 else None)


def test_numbeo_rankings(recordings):
    res, df = parse("numbeo-rankings", recordings / "2020/numbeo/quality-of-life-rankings-2020.html")
    assert res.exit_code == 0
    assert df.columns[:4].tolist() == ["rank", "city", "city_id", "quality_of_life_index"]
    assert len(df) == 22 and df["city_id"].isna().sum() == 3


def test_numbeo_city_pages(recordings):
    res, df = parse("numbeo-city-indices", recordings / "2020/numbeo/quality-of-life-xian.html")
    assert res.exit_code == 0 and df.columns.tolist() == ["indicator", "value"] and len(df) == 8
    res, df = parse("numbeo-city-prices", recordings / "2020/numbeo/cost-of-living-paris.html")
    assert res.exit_code == 0 and df.columns.tolist() == ["item", "value", "currency"]


def test_hurun_and_gawc(recordings, tmp_path):
    pages = [recordings / f"2020/hurun/api-WE53FEER-{o}.json" for o in (0, 200)]
    both = tmp_path / "hurun-pages.json"  # a JSON array of the two saved pages
    both.write_bytes(b"[" + b",".join(p.read_bytes() for p in pages) + b"]")
    res, df = parse("hurun-list", both)
    assert res.exit_code == 0, res.output
    assert df.columns.tolist()[:6] == ["rank", "company", "valuation_usd_bn", "city", "country", "city_id"]
    assert len(df) == 335 and (df["city_id"] == "beijing").sum() == 93
    assert "unicorns per city" in res.output and "beijing: 93" in res.output
    res, df = parse("hurun-list", pages[0])  # one saved page of the two
    assert res.exit_code == 0 and len(df) == 200 and "one page: 200 of 335 rows" in res.output
    res, df = parse("gawc-tiers", recordings / "2020/gawc/world2020t.html")
    assert res.exit_code == 0, res.output
    assert df.columns.tolist() == ["tier", "city", "city_id"]
    assert df.set_index("city_id").loc["guangzhou", "tier"] == "Alpha-"
    res, df = parse("gawc-connectivity", recordings / "2020/gawc/connectivity-2020.xlsx")
    assert res.exit_code == 0, res.output
    assert df.columns.tolist() == ["rank", "city", "country", "city_id", "gnc_abs", "gnc_rel"]
    assert df.set_index("city_id").loc["london", "gnc_rel"] == 100.0


def test_changed_layout_exits_non_zero_with_one_clear_line(tmp_path):
    page = tmp_path / "blocked.html"
    page.write_text("<html><head><title>Attention Required! | Cloudflare</title></head><body>captcha</body></html>")
    res = runner.invoke(app, ["parse", "numbeo-rankings", str(page)])
    assert res.exit_code == 1
    assert "block or challenge page" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) <= 3


def test_unknown_kind_and_missing_file(tmp_path):
    res = runner.invoke(app, ["parse", "nope", str(tmp_path / "x")])
    assert res.exit_code == 1 and "unknown kind 'nope'" in res.output
    res = runner.invoke(app, ["parse", "numbeo-rankings", str(tmp_path / "missing.html")])
    assert res.exit_code == 1 and "cannot read" in res.output


def test_the_installed_command_keeps_exit_status_and_output_when_it_skips_teardown(tmp_path, recordings):
    """`talent-index` leaves through os._exit after the exit handlers (no interpreter teardown):
    its status and everything it printed must come through unchanged."""
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("talent-index"))
    ok = subprocess.run(
        [exe, "parse", "numbeo-rankings", str(recordings / "2020/numbeo/quality-of-life-rankings-2020.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = pd.read_csv(io.StringIO(ok.stdout))
    assert ok.returncode == 0 and len(rows) == 22  # the whole table came through the pipe
    bad = subprocess.run(
        [exe, "parse", "numbeo-rankings", str(tmp_path / "missing.html")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1 and "cannot read" in bad.stderr
    usage = subprocess.run([exe, "parse"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr


def test_version_names_the_package_and_the_commit():
    import re

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert re.fullmatch(r"talent-index 0\.1\.0 \(code ([0-9a-f]{12}(\+dirty)?)\)\n", res.stdout), res.stdout
