"""Alerting automations kept in the repo (`ops/automations.yaml`) and applied to a Prefect server."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import yaml
from prefect.automations import Automation, AutomationCore, CallWebhook, EventTrigger, SendNotification
from prefect.blocks.core import Block
from prefect.blocks.notifications import SlackWebhook
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.types import SecretDict
from pydantic import SecretStr

from tasks.errors import PipelineError
from tasks.settings import PROJECT_ROOT

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

    block: Block
    if notify == "webhook":
        block = Webhook(method="POST", url=SecretStr(url), headers=SecretDict({"Content-Type": "application/json"}))
    else:
        block = SlackWebhook(url=SecretStr(url))
    block.save(BLOCK_NAME, overwrite=True)
    return block


def load_specs(path: Path | None = None) -> dict:
    return yaml.safe_load((path or AUTOMATIONS_FILE).read_text())


def build(spec: dict, deployments: list[str], notify: str, block_id):

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
    else:  # Slack shows text: the same content, shortened
        action = SendNotification(
            block_document_id=block_id, subject=spec["subject"], body=spec.get("text", spec["payload"])
        )
    return Automation(name=spec["name"], description=spec.get("description", ""), trigger=trigger, actions=[action])


def _essentials(automation) -> dict:
    """What defines an automation, without the ids the server or the client made up; sets (a
    trigger's `expect`, `after`, `for_each`) as sorted lists, since their order is arbitrary."""
    doc = automation.model_dump(mode="json", exclude={"id", "created", "updated", "owner_resource", "tags"})
    doc.get("trigger", {}).pop("id", None)
    return _canonical(doc)


def _canonical(value):
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def apply_automations(notify: str = "webhook", path: Path | None = None) -> dict[str, str]:
    """Upsert every automation of the file by name: created when missing, updated in place (same
    id) when its definition changed, left alone when unchanged — so a restart keeps the ids and
    the proactive "no refresh" window. Returns name -> created | updated | unchanged."""

    doc = load_specs(path)
    block = notification_block(notify)
    done = {}
    with get_client(sync_client=True) as client:
        for spec in doc["automations"]:
            wanted = build(spec, doc["deployments"], notify, block._block_document_id)
            existing = client.read_automations_by_name(spec["name"])
            for extra in existing[1:]:  # duplicates left by an older version: keep one
                client.delete_automation(extra.id)
            core = AutomationCore(
                **wanted.model_dump(exclude={"id", "owner_resource"})
            )  # the server refuses it on update
            if not existing:
                client.create_automation(core)
                done[spec["name"]] = "created"
            elif _essentials(existing[0]) != _essentials(core):
                client.update_automation(existing[0].id, core)
                done[spec["name"]] = "updated"
            else:
                done[spec["name"]] = "unchanged"
    return done
