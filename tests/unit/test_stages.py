"""Stage names come from the dbt project's stage rules; campaigns and charts follow them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from journeyflow import report_charts as charts
from journeyflow.campaigns import CampaignConfigError, parse_campaign_config
from journeyflow.stages import StageRulesError, funnel_stages, journey_stages

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, rules) -> Path:
    path = tmp_path / "dbt_project.yml"
    path.write_text(yaml.safe_dump({"name": "x", "vars": {"journey_stage_rules": rules}}))
    return path


def test_shipped_rules_give_the_funnel_then_lapsed():
    assert journey_stages() == ("awareness", "consideration", "decision", "retention", "lapsed")
    assert funnel_stages() == ("awareness", "consideration", "decision", "retention")


def test_stages_follow_the_rules_file(tmp_path):
    project = _project(
        tmp_path,
        {"stages": [{"name": "visitor", "enter_when": []}, {"name": "buyer", "enter_when": []}]},
    )
    assert journey_stages(project) == ("visitor", "buyer", "lapsed")


def test_rules_without_named_stages_are_an_error_naming_the_file(tmp_path):
    project = _project(tmp_path, {"stages": [{"enter_when": []}]})
    with pytest.raises(StageRulesError, match="journey_stage_rules.stages"):
        journey_stages(project)


def _campaign(stage: str) -> dict:
    return {
        "campaigns": {
            "win_back": {
                "trigger": {"entered_stage": {"stage": stage, "within_days": 7}},
                "content": {"template_id": "d-1"},
            }
        }
    }


def test_campaigns_may_trigger_on_lapsed_but_not_on_unknown_stages():
    config = parse_campaign_config(_campaign("lapsed"), "campaigns.yml")
    assert config.campaigns[0].trigger.stage == "lapsed"
    with pytest.raises(CampaignConfigError, match="'churned' not in"):
        parse_campaign_config(_campaign("churned"), "campaigns.yml")


def test_funnel_shows_lapsed_with_how_many_came_back():
    svg = charts.funnel_chart(
        [charts.FunnelStage("awareness", 100, 60, 40), charts.FunnelStage("lapsed", 20, 5, 15)]
    )
    assert "5 came back (25%), 15 still lapsed (75%)" in svg
    assert charts.STAGE_COLOURS["lapsed"] in svg


def test_sankey_draws_lapses_and_comebacks_and_rejects_unknown_stages():
    svg = charts.sankey_chart(
        [
            charts.Flow("new", "awareness", 10),
            charts.Flow("awareness", "lapsed", 4),
            charts.Flow("lapsed", "awareness", 1),
        ]
    )
    assert ">lapsed 4<" in svg
    with pytest.raises(ValueError, match="churned"):
        charts.sankey_chart([charts.Flow("awareness", "churned", 1)])
