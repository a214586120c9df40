"""Operations wiring of journey_pipeline: pools, alerts, partial extraction, the run record."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeyflow import alerts, redaction
from journeyflow.pools import DBT_POOL, SENDGRID_POOL, declared_pools

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def as_list(callbacks) -> list:
    return callbacks if isinstance(callbacks, list) else [callbacks]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER)).dags["journey_pipeline"]


def test_dbt_and_sending_are_serialised_by_one_slot_pools(dag):
    pools = declared_pools()
    assert pools[DBT_POOL]["slots"] == 1 and pools[SENDGRID_POOL]["slots"] == 1
    assert dag.task_dict["build_marts"].pool == DBT_POOL
    assert dag.task_dict["build_reporting"].pool == DBT_POOL
    assert dag.task_dict["send_campaigns"].pool == SENDGRID_POOL
    assert dag.task_dict["extract_source"].max_active_tis_per_dagrun > 1


def test_every_task_alerts_on_failure_and_masks_secrets(dag):
    for task in dag.tasks:
        assert alerts.notify_task_failure in as_list(task.on_failure_callback), task.task_id
        assert redaction.mask_task_secrets in as_list(task.on_execute_callback), task.task_id


def test_a_down_source_blocks_sending_but_not_the_marts(dag):
    assert dag.task_dict["gate_raw"].trigger_rule == "all_done_min_one_success"
    assert "send_campaigns" in dag.task_dict["extract_source"].downstream_task_ids


def test_record_run_is_a_teardown_after_every_task(dag):
    record = dag.task_dict["record_run"]
    assert record.is_teardown and not record.on_failure_fail_dagrun
    assert record.upstream_task_ids == set(dag.task_dict) - {"record_run"}
