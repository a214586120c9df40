"""Stage names come from the dbt project's stage rules; campaigns and charts follow them."""

from __future__ import annotations

import json
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


def _stage_value_sets() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in sorted((ROOT / "expectations" / "expectations").glob("*/*.json")):
        for expectation in json.loads(path.read_text())["expectations"]:
            kwargs = expectation["kwargs"]
            if "stage" in str(kwargs.get("column", "")) and "value_set" in kwargs:
                found.append((path.stem, kwargs["column"], kwargs["value_set"]))
    return found


def test_quality_gates_accept_exactly_the_stages_of_the_rules():
    value_sets = _stage_value_sets()
    assert {table for table, _, _ in value_sets} >= {
        "fct_customer_stage_history",
        "customer_current_stage",
        "kpi_stage_daily",
        "rpt_funnel_weekly",
        "rpt_stage_flow",
    }
    for table, column, values in value_sets:
        extra = {"new"} if column == "from_stage" else set()
        assert set(values) == set(journey_stages()) | extra, (table, column)
