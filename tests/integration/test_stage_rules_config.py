"""Mistakes in var('journey_stage_rules') stop dbt with an error naming the rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeyflow.dbt_runner import DbtFailure, run_dbt
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
LAPSED = {"after_inactive_days": 90}


@pytest.fixture(scope="module")
def empty_db(server_url):
    with fresh_database(server_url, "stage_rules") as url:
        yield url


@pytest.fixture
def target(tmp_path) -> Path:
    """A target folder of its own: the project's target/ is left to the pipeline."""
    return tmp_path / "target"


def _compile(url: str, rules: dict, target: Path) -> str:
    variables = json.dumps({"journey_stage_rules": rules})
    return run_dbt(
        [
            "compile",
            "--select",
            "fct_customer_stage_history",
            "--vars",
            variables,
            "--target-path",
            str(target),
        ],
        DBT_PROJECT,
        url,
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {
                "stages": [{"name": "visitor", "enter_when": [{"touchpoint": "any"}]}],
                "lapsed": LAPSED,
            },
            "stage 'visitor', condition 1: unknown field 'touchpoint'",
        ),
        (
            {
                "stages": [
                    {"name": "visitor", "enter_when": [{"touchpoints": "any", "at_least": 0}]}
                ],
                "lapsed": LAPSED,
            },
            "stage 'visitor', condition 1: at_least must be a whole number >= 1",
        ),
        (
            {
                "stages": [{"name": "visitor", "enter_when": [{"touchpoints": "any"}]}],
                "lapsed": LAPSED,
                "churn": {},
            },
            "unknown field 'churn'",
        ),
    ],
)
def test_invalid_rules_name_the_rule(empty_db, target, rules, message):
    with pytest.raises(DbtFailure) as caught:
        _compile(empty_db, rules, target)
    assert "journey_stage_rules" in str(caught.value)
    assert message in str(caught.value)


def test_a_new_rule_needs_no_sql_edit(empty_db, target):
    rules = {
        "stages": [
            {"name": "visitor", "enter_when": [{"touchpoints": "any", "except": ["email_open"]}]},
            {"name": "shopper", "enter_when": [{"touchpoints": ["add_to_cart"], "at_least": 3}]},
        ],
        "lapsed": {"after_inactive_days": 30},
        "reentry": "resume",
    }
    _compile(empty_db, rules, target)
    compiled = next(target.glob("compiled/**/fct_customer_stage_history.sql"))
    sql = compiled.read_text()
    assert "shopper_condition_1" in sql
    assert "touchpoint_type not in ('email_open')" in sql
