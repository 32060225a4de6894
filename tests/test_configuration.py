"""Typed configuration: a wrong type, a value out of its choices or an unknown key in either YAML
file is one line naming the file, the line of the key and its path."""

import pytest

from scoring.methodology import MethodologyError, load_methodology
from tasks.errors import PipelineError
from tasks.settings import CONFIG_DIR, PROJECT_ROOT
from tasks.sources import load_sources_raw

METHODOLOGY = (PROJECT_ROOT / "scoring" / "methodology.yaml").read_text()
SOURCES = (CONFIG_DIR / "sources.yaml").read_text()


def error_line(message: str, text: str) -> str:
    """The line of `text` the message names ('... line N: ...')."""
    n = int(message.split(" line ")[1].split(":")[0].split(",")[0])
    return text.splitlines()[n - 1].split("#")[0].strip()


def assert_one_line(bad, text, old, new, load, error, message, line):
    """`text` with `old` replaced by `new`, written to `bad`: loading it raises `error` in one line
    naming the file and the line (which holds `line`, when given) and ending with `message`."""
    assert old in text
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(error) as e:
        load(bad)
    said = str(e.value)
    assert "\n" not in said and said.startswith(f"{bad} line ") and said.endswith(": " + message), said
    if line:
        assert error_line(said, bad.read_text()) == line


@pytest.mark.parametrize(
    ("old", "new", "message", "line"),
    [
        ("normalization: minmax", "normalization: zscore",
         "topsis.normalization: expected 'minmax' or 'vector', found 'zscore'", "normalization: zscore"),
        ("  epsilon: 1.0e-4", "  epsilon: 1.0e-4\n  epsilom: 2",
         "entropy.epsilom: unknown key; known: epsilon, input, zero_rule", "epsilom: 2"),
        ("low: 50.0", "low: fifty", "scale.low: expected a valid number, unable to parse string as a number, found 'fifty'",
         "low: fifty"),
        ("indicator: rd_pct_gdp,", "indicator: rd_pct_gdp, use: sometimes,",
         "dimensions.innovation.indicators.rd_intensity.proxy.use: expected 'per_city' or 'when_no_real_value', "
         "found 'sometimes'", None),
        ('id: unicorns, name_en: Unicorn companies, name_zh: 独角兽企业数量, direction: "+"',
         'id: unicorns, name_en: Unicorn companies, name_zh: 独角兽企业数量, direction: "up"',
         "dimensions.innovation.indicators.unicorns.direction: expected '+', '-' or '−', found 'up'", None),
        ("CNY: {2016: 6.6444778294468", "CNY: {2016: -1",
         "proxies.exchange_rates.per_usd: CNY.2016: expected a positive number, found -1.0", "per_usd:"),
    ],
    ids=["choice", "unknown key", "type", "nested by ids", "direction", "rate"],
)  # fmt: skip
def test_methodology_errors_name_file_line_and_key_path(tmp_path, old, new, message, line):
    assert_one_line(tmp_path / "m.yaml", METHODOLOGY, old, new, load_methodology, MethodologyError, message, line)


@pytest.mark.parametrize(
    ("old", "new", "message", "line"),
    [
        ("  display_currency: EUR", "  display_currency: EUR\n  display_curency: USD",
         "numbeo.display_curency: unknown key; known: api, base_url, change_warning_share, display_currency, http, "
         "layout_change, module, offline, origin, ranking_section, ranking_title, without_secrets",
         "display_curency: USD"),
        ("  page_limit: 200 ", "  page_limit: lots ",
         "hurun.page_limit: expected a valid integer, unable to parse string as an integer, found 'lots'", None),
        ("    format: none                 #   the bundled", "    format: nothing                 #   the bundled",
         "night_lights.offline.format: expected 'vnp46a4', 'vnl-clip' or 'none', found 'nothing'", None),
        ("  per_page: 1000", "  per_page: 0", "wdi.per_page: expected greater than or equal to 1, found 0",
         "per_page: 0"),
        ("    producer: Numbeo", "    producer: Numbeo\n    licence: x",
         "numbeo.origin.licence: unknown key; known: cadence, citation, producer, terms, url", "licence: x"),
    ],
    ids=["unknown key", "type", "offline override", "bound", "origin"],
)  # fmt: skip
def test_sources_errors_name_file_line_and_key_path(tmp_path, old, new, message, line):
    assert_one_line(tmp_path / "sources.yaml", SOURCES, old, new, load_sources_raw, PipelineError, message, line)


def test_the_sources_file_is_read_once_per_version(tmp_path, monkeypatch):
    import yaml

    from scoring import yamlconfig

    mine = tmp_path / "sources.yaml"
    mine.write_text(SOURCES)
    reads = []
    real = yamlconfig.load_yaml

    def counting(path, what):
        reads.append(path)
        return real(path, what)

    monkeypatch.setattr("tasks.sources.config.load_yaml", counting)
    first = load_sources_raw(mine)
    first["numbeo"]["base_url"] = "changed by a caller"  # a caller's change stays its own
    assert load_sources_raw(mine)["numbeo"]["base_url"] == "https://www.numbeo.com" and len(reads) == 1
    doc = yaml.safe_load(SOURCES)
    doc["numbeo"]["display_currency"] = "USD"
    mine.write_text(yaml.safe_dump(doc))  # a new version of the file is read again
    assert load_sources_raw(mine)["numbeo"]["display_currency"] == "USD" and len(reads) == 2


def test_each_indicator_prints_with_its_units_decimals():
    m = load_methodology()
    assert m.indicator("unicorns").shown(93.0) == "93"
    assert m.indicator("international_students").shown(108257.0) == "108,257"
    assert m.indicator("monthly_income").shown(3461.44) == "3,461"
    assert m.indicator("pollution_index").shown(62.346) == "62.35"
    assert m.indicator("economic_sustainability").shown(0.4567) == "0.457"
    lights = m.indicator("night_lights")
    assert lights.shown(358466.4) == "358,466"
    assert lights.shown(358.44, "proxy") == "358.4"  # GDP in billion US$: the proxy's own decimals
    assert m.indicator("international_students").shown(0.7395, "proxy") == "0.7395"  # a QS rank score
    assert m.indicator("physician_density").shown(23.456, "proxy") == "23.5"
    assert m.indicator("physician_density").shown(float("nan")) == "—"
