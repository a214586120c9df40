"""Campaign declarations: parse and validate the campaigns YAML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STAGES = {"awareness", "consideration", "decision", "retention"}


class CampaignConfigError(ValueError):
    """The campaigns file is invalid; the message names the file and key of the problem."""


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    template_id: str
    stage: str
    min_days: int
    marketing: bool = True
    description: str = ""


def _field(body: dict[str, Any], key: str, where: str) -> Any:
    if key not in body or body[key] in (None, ""):
        raise CampaignConfigError(f"{where}.{key}: required field is missing")
    return body[key]


def _parse_campaign(campaign_id: str, body: Any) -> Campaign:
    where = f"campaigns.{campaign_id}"
    if not isinstance(body, dict):
        raise CampaignConfigError(f"{where}: expected a mapping")
    trigger = _field(body, "trigger", where)
    if not isinstance(trigger, dict):
        raise CampaignConfigError(f"{where}.trigger: expected a mapping")
    stage = _field(trigger, "stalled_in_stage", f"{where}.trigger")
    if stage not in STAGES:
        raise CampaignConfigError(
            f"{where}.trigger.stalled_in_stage: {stage!r} not in {sorted(STAGES)}"
        )
    min_days = _field(trigger, "min_days", f"{where}.trigger")
    if not isinstance(min_days, int) or min_days < 0:
        raise CampaignConfigError(f"{where}.trigger.min_days: must be a non-negative integer")
    return Campaign(
        campaign_id=campaign_id,
        template_id=str(_field(body, "template_id", where)),
        stage=stage,
        min_days=min_days,
        marketing=bool(body.get("marketing", True)),
        description=str(body.get("description", "")),
    )


def load_campaigns(path: Path) -> list[Campaign]:
    """Read and validate the campaigns YAML file."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or not isinstance(document.get("campaigns"), dict):
        raise CampaignConfigError(f"{path}: campaigns: a top-level `campaigns` mapping is required")
    try:
        return [_parse_campaign(name, body) for name, body in document["campaigns"].items()]
    except CampaignConfigError as error:
        raise CampaignConfigError(f"{path}: {error}") from error
