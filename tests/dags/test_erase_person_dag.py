"""Wiring of erase_person: triggered only, erasure before suppression, pools, alerts."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeyflow import alerts, redaction
from journeyflow.pools import DBT_POOL, SENDGRID_POOL

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag.dags["erase_person"]


def test_runs_only_when_triggered_with_an_identifier(dag):
    assert dag.schedule is None or str(dag.timetable.summary) == "None"
    assert "identifier" in dag.params and "identifier_type" in dag.params
    assert dag.params.get_param("identifier_type").value is None


def test_erasure_comes_before_suppression(dag):
    assert dag.task_dict["suppress_in_sendgrid"].upstream_task_ids == {"erase_person_data"}


def test_erasure_waits_for_dbt_builds_and_suppression_for_senders(dag):
    assert dag.task_dict["erase_person_data"].pool == DBT_POOL
    assert dag.task_dict["suppress_in_sendgrid"].pool == SENDGRID_POOL


def test_every_task_retries_alerts_and_masks_secrets(dag):
    for task in dag.tasks:
        assert task.retries >= 1
        assert task.on_failure_callback and alerts.notify_task_failure in task.on_failure_callback
        assert redaction.mask_task_secrets in task.on_execute_callback
