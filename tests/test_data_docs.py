"""GX Data Docs work offline: every stylesheet and script is a vendored local copy, and the index
lists its validations, in headless Chromium with name resolution off."""

import json
import subprocess

import pandas as pd

from tasks.gx_adapter import VENDORED, render_data_docs
from tasks.service.browser import headless_args
from tasks.validate import run_suite

SUITE = {
    "name": "offline_check",
    "expectations": [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "v", "min_value": 0, "max_value": 10},
            "severity": "warning",
        }
    ],
}


def page_requests(netlog) -> list[str]:
    """URLs the page itself asked for (Chromium's own background requests have no origin)."""
    doc = json.loads(netlog.read_text())
    names = {v: k for k, v in doc["constants"]["logEventTypes"].items()}
    return sorted(
        {
            e["params"]["url"]
            for e in doc["events"]
            if names.get(e["type"]) == "URL_REQUEST_START_JOB"
            and "url" in e.get("params", {})
            and e["params"].get("initiator") != "not an origin"
        }
    )


def test_data_docs_load_no_remote_asset_and_list_their_validations(tmp_path, chromium_path):
    browser = chromium_path
    assert any(VENDORED.glob("*/.integrity")), "Data Docs assets are not vendored: run `make install`"
    docs = tmp_path / "runs" / "run-1" / "data-docs"
    df = pd.DataFrame({"city_id": ["a", "b"], "v": [1.0, 12.0]})
    for source in ("alpha", "beta", "gamma"):
        run_suite(df, {**SUITE, "name": f"{source}_suite"}, source=source, docs_dir=docs, run_name=f"{source} 2020")
    index = render_data_docs(docs)
    assert index is not None
    html = index.read_text()
    assert "cdn" not in html.lower() and "unpkg.com" not in html and "jquery.com" not in html
    assert "alpha_suite" in html and "alpha 2020" in html  # the suite's own name and a meaningful run name
    netlog = tmp_path / "netlog.json"
    flags = headless_args(
        tmp_path / "profile",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=5000",
    )
    dom = subprocess.run([browser, *flags, "--dump-dom", index.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert page_requests(netlog) == []  # every asset local: the page asked no host for anything
    rows = dom.stdout.count("data-index=")
    assert rows >= 3, "the validation list did not populate (its table is filled by the vendored scripts)"
    for name in ("alpha_suite", "beta_suite", "gamma_suite"):
        assert name in dom.stdout
