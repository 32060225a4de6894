"""Alerting automations kept in the repo (`ops/automations.yaml`) and applied to a Prefect server."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import yaml

from .errors import PipelineError
from .settings import PROJECT_ROOT

AUTOMATIONS_FILE = PROJECT_ROOT / "ops" / "automations.yaml"
BLOCK_NAME = "talent-index-alerts"
NOTIFY_ENV = {"webhook": "TALENT_INDEX_WEBHOOK_URL", "slack": "TALENT_INDEX_SLACK_WEBHOOK_URL"}


def notification_block(notify: str):
    """The block every automation notifies through; its URL comes from the environment only."""
    env = NOTIFY_ENV.get(notify)
    if env is None:
        raise PipelineError(
            f"unknown notify kind {notify!r}; expected one of {sorted(NOTIFY_ENV)} "
            "(email needs the prefect-email collection, not installed here)"
        )
    url = os.environ.get(env)
    if not url:
        raise PipelineError(f"set {env} to the URL alerts are posted to (it is a secret: never commit it)")
    from prefect.blocks.core import Block
    from pydantic import SecretStr

    block: Block
    if notify == "webhook":
        from prefect.blocks.webhook import Webhook
        from prefect.types import SecretDict

        block = Webhook(method="POST", url=SecretStr(url), headers=SecretDict({"Content-Type": "application/json"}))
    else:
        from prefect.blocks.notifications import SlackWebhook

        block = SlackWebhook(url=SecretStr(url))
    block.save(BLOCK_NAME, overwrite=True)
    return block


def load_specs(path: Path | None = None) -> dict:
    return yaml.safe_load((path or AUTOMATIONS_FILE).read_text())


def build(spec: dict, deployments: list[str], notify: str, block_id):
    from prefect.automations import Automation, CallWebhook, EventTrigger, SendNotification

    t = spec["trigger"]
    match_related: dict[str, str | list[str]] = (
        {"prefect.resource.role": "deployment", "prefect.resource.name": list(deployments)}
        if t.get("match_related_deployments")
        else {}
    )
    trigger = EventTrigger(
        expect=set(t["expect"]),
        match_related=match_related,
        posture=t["posture"],
        threshold=int(t.get("threshold", 1)),
        within=timedelta(seconds=int(t.get("within_s", 0))),
    )
    action: CallWebhook | SendNotification
    if notify == "webhook":
        action = CallWebhook(block_document_id=block_id, payload=spec["payload"])
    else:
        action = SendNotification(block_document_id=block_id, subject=spec["subject"], body=spec["payload"])
    return Automation(name=spec["name"], description=spec.get("description", ""), trigger=trigger, actions=[action])


def apply_automations(notify: str = "webhook", path: Path | None = None) -> list[str]:
    """Create or replace every automation of the file; returns their names."""
    from prefect.automations import Automation

    doc = load_specs(path)
    block = notification_block(notify)
    names = []
    for spec in doc["automations"]:
        try:
            Automation.read(name=spec["name"]).delete()  # type: ignore[attr-defined]  # sync_compatible
        except (ValueError, Exception):  # noqa: BLE001 - not there yet
            pass
        build(spec, doc["deployments"], notify, block._block_document_id).create()
        names.append(spec["name"])
    return names
