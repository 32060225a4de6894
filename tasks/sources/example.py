"""An example source: the whole `Source` contract in one small module, to copy for a new source.

Not configured in data/sources.yaml (it is no real source): `tests/flows/test_refresh.py::
test_the_example_source_is_refreshed_end_to_end_and_scored` configures it in a copy, with its
recording, a registry with its names column and a methodology taking the climate index from it, and
refreshes it end to end. Nothing outside this module (and that configuration) knows about it.

What it reads: a CSV list of cities as it prints them ("Vienna, Austria") with a climate score and
the year the list states,

    city,climate,year
    "Vienna, Austria",71.5,2020

at a URL per edition of the index (`url`, with `{edition}`).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from pydantic import Field

from tasks.errors import SourceError
from tasks.registry.cities import Listed
from tasks.sources.base import TIDY_COLUMNS, ReleaseTable, Request, Source, SuiteSpec, VintagePolicy
from tasks.sources.schema import OwnSettings

SOURCE = "example"
COLUMNS = ["city", "climate", "year"]


class ExampleSettings(OwnSettings):
    """Its keys in data/sources.yaml (with the ones every source has: origin, http, ...). A key not
    declared here is refused in one line naming the file, the line and the key path."""

    url: str = Field(min_length=1)  # the list of an edition: {edition} is filled in
    year_offset: int = 0  # edition E reads the list of year E + year_offset


def parse_list(body: bytes, location: str) -> pd.DataFrame:
    """The CSV as text columns; a layout change is an error naming the file and what was expected."""
    try:
        table = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a layout problem for the user
        raise SourceError(
            SOURCE, f"expected a CSV list ({', '.join(COLUMNS)}), could not read it: {exc}", location=location
        ) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise SourceError(SOURCE, f"expected the columns {COLUMNS}, found {list(table.columns)}", location=location)
    return table[COLUMNS]


class Example(Source):
    name = SOURCE
    settings_model = ExampleSettings
    suites = (SuiteSpec("example"),)  # its GX suite, on the tidy table
    suites_dir = Path(__file__).with_name("example_suites")  # (a real source keeps it in expectations/)
    parse_kinds = {"example-csv": "the example climate list (CSV)"}  # `talent-index parse example-csv FILE`
    # the registry column of its spellings of city names, and every registry column it reads
    name_column = "example_names"
    registry_columns = ("example_names",)

    # --- editions: which of its lists an edition of the index reads, and the vintage expected
    def edition_config(self, cfg: dict, edition: str, cadence: str) -> tuple[dict, VintagePolicy]:
        year = str(int(edition) + int(cfg.get("year_offset", 0)))
        return {**cfg, "url": str(cfg["url"]).format(edition=year)}, VintagePolicy(year, note="the list's year")

    def found_vintage(self, cfg: dict, parsed: dict) -> str | None:
        """The year the list itself states (one per list)."""
        years = {y for table in parsed.values() for y in table["year"]}
        return years.pop() if len(years) == 1 else None

    # --- fetch and parse
    def plan(self, cfg: dict, registry, done: dict) -> list[Request]:
        return [Request("example-csv", cfg["url"])]

    def parse(self, req: Request, body: bytes, registry, cfg: dict | None = None) -> pd.DataFrame:
        return parse_list(body, req.url)

    # --- tidy: one row per registry city and indicator it supplies
    def tidy(self, cfg: dict, registry, parsed: dict) -> pd.DataFrame:
        rows = []
        for req, table in parsed.items():
            for r in table.itertuples():
                city_id = registry.match(self.name_column, r.city)
                if city_id is None:
                    continue  # a city outside the registry
                try:
                    value = float(r.climate)
                except ValueError:
                    raise SourceError(
                        SOURCE,
                        f"expected a number, found {r.climate!r}",
                        location=req.url,
                        city=r.city,
                        field="climate",
                    ) from None
                rows.append((city_id, "climate_index", value, "index", cfg["edition"], r.city, req.url))
        return pd.DataFrame(rows, columns=TIDY_COLUMNS)

    # --- city names: its list for `talent-index cities build`
    def city_list(self, body: bytes, location: str) -> list[Listed]:
        out = []
        for i, printed in enumerate(parse_list(body, location)["city"], start=1):
            city, _, country = str(printed).rpartition(", ")
            out.append(Listed(self.name, i, str(printed), city or str(printed), country))
        return out

    # --- what it adds to a release
    def release_tables(self, snapshot: pd.DataFrame) -> list[ReleaseTable]:
        """The three mildest climates it lists among the release's cities."""
        top = snapshot.nlargest(3, "value")[["city_id", "name_in_source", "value"]]
        headings = {"city_id": "City", "name_in_source": "As the list prints it", "value": "Climate"}
        return [ReleaseTable("example_mildest.csv", "Example: the three mildest climates", top, headings)]

    def release_notes(self, coverage: pd.DataFrame) -> list[str]:
        n = int(coverage["value"].notna().sum())
        return [f"Example: {n} climate values come from the example source's list (a demonstration)."] if n else []


SPEC = Example()
