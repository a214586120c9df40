"""dbt invocations keep their parse state per warehouse and --vars; run values go by environment."""

from pathlib import Path

from journeyflow.dbt_runner import run_values_environment, target_path

PROJECT = Path("/project")
WAREHOUSE = "postgresql://postgres@127.0.0.1:5432/journey"


def test_the_same_warehouse_and_vars_reuse_one_target_folder():
    first = target_path(PROJECT, WAREHOUSE, ["build", "--exclude", "tag:reporting"])
    again = target_path(PROJECT, WAREHOUSE, ["build", "--exclude", "tag:reporting"])
    assert first == again
    assert first.parent == PROJECT / "target"


def test_another_warehouse_or_other_vars_get_their_own_target_folder():
    marts = target_path(PROJECT, WAREHOUSE, ["build"])
    other_database = target_path(PROJECT, WAREHOUSE.replace("/journey", "/other"), ["build"])
    reporting = target_path(PROJECT, WAREHOUSE, ["build", "--vars", '{"reporting_schema": "x"}'])
    assert len({marts, other_database, reporting}) == 3


def test_run_values_become_journey_environment_variables():
    values = {"as_of": "2026-11-01T00:00:00+00:00", "run_id": "manual__1"}
    assert run_values_environment(values) == {
        "JOURNEY_AS_OF": "2026-11-01T00:00:00+00:00",
        "JOURNEY_RUN_ID": "manual__1",
    }
