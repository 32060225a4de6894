"""GX Data Docs page views that compile their Jinja templates once per process.

GX makes a new view, with a new Jinja environment, for each section of each Data Docs build, so a
process compiles the same templates again for every run it renders (a backfill renders one per
edition; the tests, many). These views are GX's own page and index views, configured in the site
(`tasks.validate._docs_site`) as GX documents for custom views; each class keeps the environment
its first instance made, which holds the compiled templates. Imported by GX when it renders."""

from __future__ import annotations

from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

_ENVIRONMENTS: dict[tuple, Any] = {}  # (view class, custom styles, custom views) -> Jinja environment


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


class PageView(_CompiledOnce, DefaultJinjaPageView):
    """A validation's or a suite's page."""


class IndexPageView(_CompiledOnce, DefaultJinjaIndexPageView):
    """The site's index."""
