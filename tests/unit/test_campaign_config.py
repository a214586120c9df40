"""The campaigns file: the shipped one is valid, and mistakes name the file and the key."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
import yaml

from journeyflow.campaigns import (
    CampaignConfigError,
    load_campaign_config,
    parse_campaign_config,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "dags" / "config" / "campaigns.yml"


def test_shipped_campaigns_cover_every_trigger_kind():
    config = load_campaign_config(SHIPPED)
    kinds = {campaign.trigger.kind for campaign in config.campaigns}
    assert kinds == {"abandoned", "stalled_in_stage", "entered_stage", "sql"}
    priorities = [campaign.priority for campaign in config.campaigns]
    assert priorities == sorted(priorities)
    assert config.policy.quiet_hours.start == time(21, 0)
    rescue = config.campaigns[0]
    assert [(v.name, v.percent) for v in rescue.variants] == [
        ("reminder", 50.0),
        ("incentive", 50.0),
    ]
    assert rescue.template_data == (("first_name", "first_name"),)


def _valid() -> dict:
    return {
        "policy": {"quiet_hours": {"start": "21:00", "end": "08:00"}},
        "campaigns": {
            "nudge": {
                "trigger": {"stalled_in_stage": {"stage": "consideration", "days": 3}},
                "content": {"template_id": "d-1"},
            }
        },
    }


def _broken(path: str, value) -> dict:
    """The valid document with one key (dotted path) replaced, or removed when value is ...."""
    document = _valid()
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last)
    else:
        node[last] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("campaigns.nudge.trigger", ..., "campaigns.nudge.trigger: required field is missing"),
        (
            "campaigns.nudge.trigger.stalled_in_stage.stage",
            "buying",
            "campaigns.nudge.trigger.stalled_in_stage.stage: 'buying' not in",
        ),
        (
            "campaigns.nudge.trigger.stalled_in_stage.days",
            -1,
            "campaigns.nudge.trigger.stalled_in_stage.days: must be an integer >= 1",
        ),
        (
            "campaigns.nudge.trigger.sql",
            "true; drop table x",
            "campaigns.nudge.trigger: needs exactly one of",
        ),
        ("campaigns.nudge.content", ..., "campaigns.nudge.content: required field is missing"),
        (
            "campaigns.nudge.content.variants",
            {
                "a": {"template_id": "d-a", "percent": 60},
                "b": {"template_id": "d-b", "percent": 30},
            },
            "campaigns.nudge.content: needs either template_id or variants",
        ),
        (
            "campaigns.nudge.holdout_percent",
            120,
            "campaigns.nudge.holdout_percent: must be a number of percent in [0, 100)",
        ),
        (
            "campaigns.nudge.entry_limit",
            "twice",
            "campaigns.nudge.entry_limit: must be after_exit, once or {every_days: N}",
        ),
        ("campaigns.nudge.tigger", {}, "campaigns.nudge.tigger: unknown key"),
        ("policy.quiet_hours.start", 1260, 'policy.quiet_hours.start: must be a quoted "HH:MM"'),
        ("policy.default_time_zone", "Mars/Base", "policy.default_time_zone: unknown time zone"),
        (
            "policy.frequency_cap",
            {"max_messages": 0, "per_days": 7},
            "policy.frequency_cap.max_messages: must be an integer >= 1",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(path, value, message):
    with pytest.raises(CampaignConfigError) as caught:
        parse_campaign_config(_broken(path, value), "dags/config/campaigns.yml")
    assert str(caught.value).startswith("dags/config/campaigns.yml: ")
    assert message in str(caught.value)


def test_variant_percentages_must_add_up_to_100():
    document = _valid()
    variants = {
        "a": {"template_id": "d-a", "percent": 60},
        "b": {"template_id": "d-b", "percent": 30},
    }
    document["campaigns"]["nudge"]["content"] = {"variants": variants}
    with pytest.raises(CampaignConfigError, match=r"content\.variants: percentages must add up"):
        parse_campaign_config(document, "c.yml")


def test_sql_predicates_are_single_expressions():
    document = _valid()
    document["campaigns"]["nudge"]["trigger"] = {"sql": "true; delete from marts.dim_customers"}
    with pytest.raises(CampaignConfigError, match=r"trigger\.sql: must be one boolean expression"):
        parse_campaign_config(document, "c.yml")


def test_abandoned_trigger_defaults():
    document = _valid()
    document["campaigns"]["nudge"]["trigger"] = {
        "abandoned": {"steps": "checkout_started", "after_hours": 4}
    }
    (campaign,) = parse_campaign_config(document, "c.yml").campaigns
    trigger = campaign.trigger
    assert (trigger.steps, trigger.without, trigger.after_hours, trigger.within_days) == (
        ("checkout_started",),
        ("order_completed",),
        4,
        3,
    )


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "campaigns.yml"
    path.write_text("campaigns: [unclosed\n")
    with pytest.raises(CampaignConfigError, match=f"^{path}: not valid YAML"):
        load_campaign_config(path)
    path.write_text(yaml.safe_dump({"campaigns": {"Bad Id": {}}}))
    with pytest.raises(CampaignConfigError, match=f"^{path}: campaigns.Bad Id: campaign ids"):
        load_campaign_config(path)
