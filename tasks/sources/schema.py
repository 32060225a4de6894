"""The models of a source's settings in data/sources.yaml: the keys every source has
(`SourceSettings`) and the base of a source's own model (`OwnSettings`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasks.http import HttpPolicy


class Origin(BaseModel):
    """Who produces a source's data, carried into every snapshot and manifest."""

    model_config = ConfigDict(extra="forbid")
    producer: str
    citation: str = ""
    terms: str = ""
    url: str = ""
    cadence: str = ""


class SourceSettings(BaseModel):
    """The keys every source may have. A source declares its own keys in a subclass
    (`Source.settings_model`, usually `extra="forbid"`); this base accepts other keys unchecked, for
    a source that declares none."""

    model_config = ConfigDict(extra="allow")
    module: str | None = None  # the module declaring the source (default tasks.sources.<name>)
    origin: Origin | None = None
    http: HttpPolicy = Field(default_factory=HttpPolicy)
    change_warning_share: float = Field(default=0.5, gt=0)  # a value moving more than this share warns
    layout_change: dict[str, float] = {}  # thresholds of the layout-change check
    offline: dict[str, Any] = {}  # settings that replace the others in offline mode (checked as they would be)
    without_secrets: dict[str, Any] = {}  # settings that replace the others online without the secrets


def text_keys(value: Any) -> Any:
    """A mapping keyed by years as YAML reads them unquoted (2020: ...) keyed by text ("2020")."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class OwnSettings(SourceSettings):
    """Base of a source's own settings model: every key it may have is declared."""

    model_config = ConfigDict(extra="forbid")
