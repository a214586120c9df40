"""Run records: task outcomes joined with returns, headline figures, run state."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from journeyflow import ops

DBT_OUTPUT = """
12:00:01  Finished running 20 table models, 40 data tests in 0 hours 0 minutes and 9.00 seconds.
12:00:01  Done. PASS=57 WARN=1 ERROR=0 SKIP=2 NO-OP=0 TOTAL=60
"""


def crumb(task_id, state="success", map_index=-1, duration=1.5):
    return {"task_id": task_id, "map_index": map_index, "state": state, "duration": duration}


def record(tasks):
    started = datetime(2026, 11, 1, tzinfo=UTC)
    return ops.RunRecord(
        "journey_pipeline", "manual__1", "manual", started, started, started, tasks
    )


def test_dbt_totals_reads_the_summary_line():
    assert ops.dbt_totals(DBT_OUTPUT) == {
        "dbt_pass": 57,
        "dbt_warn": 1,
        "dbt_error": 0,
        "dbt_skip": 2,
    }
    assert ops.dbt_totals("no summary here") == {}


def test_extraction_and_sending_figures_add_up_in_the_headline():
    outcomes = ops.task_outcomes(
        [
            crumb("extract_source", map_index=0),
            crumb("extract_source", map_index=1),
            crumb("gate_raw"),
            crumb("gate_marts", state="failed"),
            crumb("send_campaigns", state="upstream_failed"),
        ],
        {
            ("extract_source", 0): {"source": "orders", "rows_loaded": 10, "rows_rejected": 2},
            ("extract_source", 1): {"source": "crm", "rows_loaded": 5, "rows_rejected": 0},
            ("gate_raw", -1): {"checks": 30, "failed": 1, "errors": 0},
        },
    )
    run = record(outcomes)
    assert run.headline() == {
        "rows_in": 17,
        "rows_loaded": 15,
        "rows_rejected": 2,
        "gates_passed": 1,
        "gates_failed": 1,
        "messages_sent": 0,
        "messages_suppressed": 0,
        "messages_failed": 0,
    }
    assert run.state == "failed"
    assert run.failed_tasks == ["gate_marts", "send_campaigns"]
    assert [outcome.key for outcome in outcomes][:2] == ["extract_source[0]", "extract_source[1]"]


def test_send_reports_become_message_counts():
    reports = [
        {"campaign_id": "a", "audience": 9, "decided_send": 5, "suppressed": 4, "sent": 5},
        {"campaign_id": "b", "audience": 3, "decided_send": 1, "suppressed": 2, "sent": 0},
    ]
    stats = ops.task_stats("send_campaigns", reports)
    assert stats["messages_sent"] == 5
    assert stats["messages_suppressed"] == 6
    assert stats["messages_decided"] == 6
    assert stats["campaigns"] == 2


def test_a_run_without_failures_is_a_success():
    run = record(ops.task_outcomes([crumb("prepare_warehouse"), crumb("gate_raw")], {}))
    assert run.state == "success" and run.failed_tasks == []


def test_run_start_comes_from_the_dag_run_except_for_dags_test():
    ended = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    tasks = ops.task_outcomes([crumb("a", duration=30), crumb("b", duration=12)], {})
    scheduled = SimpleNamespace(start_date=ended, triggering_user_name=None)
    logical = datetime(2026, 11, 1, tzinfo=UTC)
    tested = SimpleNamespace(start_date=logical, triggering_user_name="dag_test")
    assert ops.run_start(scheduled, ended, tasks) == ended
    assert (ended - ops.run_start(tested, ended, tasks)).total_seconds() == 42
