"""Run visibility: one `ops.pipeline_runs` row per DAG run with per-task figures and states."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

RUNS_TABLE = "ops.pipeline_runs"
FAILED_STATES = {"failed", "upstream_failed"}
DBT_TOTALS = re.compile(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)")

RUNS_DDL = f"""
create schema if not exists ops;
create table if not exists {RUNS_TABLE} (
    dag_id text not null,
    run_id text not null,
    run_type text,
    logical_date timestamptz,
    state text not null,
    started_at timestamptz,
    ended_at timestamptz,
    duration_seconds numeric,
    rows_in bigint not null default 0,
    rows_loaded bigint not null default 0,
    rows_rejected bigint not null default 0,
    gates_passed integer not null default 0,
    gates_failed integer not null default 0,
    messages_sent integer not null default 0,
    messages_suppressed integer not null default 0,
    messages_failed integer not null default 0,
    failed_tasks text[] not null default '{{}}',
    tasks jsonb not null,
    recorded_at timestamptz not null default now(),
    primary key (dag_id, run_id)
)
"""


@dataclass
class TaskOutcome:
    """What one task instance did: its final state, duration and the figures it returned."""

    task_id: str
    map_index: int
    state: str
    duration_seconds: float | None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass
class RunRecord:
    """The row written to ops.pipeline_runs."""

    dag_id: str
    run_id: str
    run_type: str | None
    logical_date: datetime | None
    started_at: datetime | None
    ended_at: datetime
    tasks: list[TaskOutcome]

    @property
    def failed_tasks(self) -> list[str]:
        return [task.key for task in self.tasks if task.state in FAILED_STATES]

    @property
    def state(self) -> str:
        return "failed" if self.failed_tasks else "success"

    def total(self, figure: str) -> int:
        return sum(int(task.stats.get(figure) or 0) for task in self.tasks)

    def headline(self) -> dict[str, int]:
        gates = [task for task in self.tasks if task.task_id.startswith("gate_")]
        return {
            "rows_in": self.total("rows_in"),
            "rows_loaded": self.total("rows_loaded"),
            "rows_rejected": self.total("rows_rejected"),
            "gates_passed": sum(task.state == "success" for task in gates),
            "gates_failed": sum(task.state == "failed" for task in gates),
            "messages_sent": self.total("messages_sent"),
            "messages_suppressed": self.total("messages_suppressed"),
            "messages_failed": self.total("messages_failed"),
        }


def run_start(dag_run, ended_at: datetime, tasks: list[TaskOutcome]) -> datetime | None:
    """When the run started; for `airflow dags test` runs, estimated from the task durations.

    `dag.test()` stamps the logical date as the run's start and runs the tasks one after another,
    so there the start is the end minus the tasks' summed durations.
    """
    if getattr(dag_run, "triggering_user_name", None) != "dag_test":
        return dag_run.start_date
    busy = sum(task.duration_seconds or 0 for task in tasks)
    return ended_at - timedelta(seconds=busy)


def dbt_totals(output: str) -> dict[str, int]:
    """PASS/WARN/ERROR/SKIP counts from the last summary line of a `dbt build` output."""
    found = DBT_TOTALS.findall(output or "")
    if not found:
        return {}
    passed, warned, errored, skipped = map(int, found[-1])
    return {"dbt_pass": passed, "dbt_warn": warned, "dbt_error": errored, "dbt_skip": skipped}


def task_stats(task_id: str, returned: Any) -> dict[str, Any]:
    """Normalise what a task returned into the figures kept per task."""
    if returned is None:
        return {}
    if task_id == "extract_source":
        loaded, rejected = returned.get("rows_loaded", 0), returned.get("rows_rejected", 0)
        return {**returned, "rows_in": loaded + rejected + returned.get("rows_erased", 0)}
    if task_id == "send_campaigns":
        return {
            "campaigns": len(returned),
            "audience": sum(report.get("audience", 0) for report in returned),
            "messages_decided": sum(report.get("decided_send", 0) for report in returned),
            "messages_sent": sum(report.get("sent", 0) for report in returned),
            "messages_suppressed": sum(report.get("suppressed", 0) for report in returned),
            "messages_failed": sum(report.get("failed", 0) for report in returned),
            "messages_in_doubt": sum(report.get("in_doubt", 0) for report in returned),
        }
    if task_id == "publish_reporting":
        return {"tables_published": len(returned)}
    if isinstance(returned, Mapping):
        return dict(returned)
    return {"returned": returned}


def task_outcomes(
    breadcrumbs: Iterable[Mapping[str, Any]], returns: Mapping[tuple[str, int], Any]
) -> list[TaskOutcome]:
    """Join the task instances' final states and durations with what each returned."""
    outcomes = []
    for crumb in breadcrumbs:
        task_id, map_index = crumb["task_id"], int(crumb.get("map_index", -1))
        returned = returns.get((task_id, map_index))
        outcomes.append(
            TaskOutcome(
                task_id=task_id,
                map_index=map_index,
                state=str(crumb["state"]),
                duration_seconds=crumb.get("duration"),
                stats=task_stats(task_id, returned),
            )
        )
    return sorted(outcomes, key=lambda outcome: (outcome.task_id, outcome.map_index))


def _tasks_document(record: RunRecord) -> str:
    return json.dumps(
        {
            task.key: {
                "state": task.state,
                "duration_seconds": task.duration_seconds,
                **task.stats,
            }
            for task in record.tasks
        },
        default=str,
        sort_keys=True,
    )


def write_run(conn: psycopg.Connection, record: RunRecord) -> None:
    """Upsert the run's row: re-running or clearing a run replaces its figures."""
    conn.execute(RUNS_DDL)
    duration = (record.ended_at - record.started_at).total_seconds() if record.started_at else None
    headline = record.headline()
    columns = [
        "dag_id",
        "run_id",
        "run_type",
        "logical_date",
        "state",
        "started_at",
        "ended_at",
        "duration_seconds",
        *headline,
        "failed_tasks",
        "tasks",
    ]
    values = [
        record.dag_id,
        record.run_id,
        record.run_type,
        record.logical_date,
        record.state,
        record.started_at,
        record.ended_at,
        duration,
        *headline.values(),
        record.failed_tasks,
        _tasks_document(record),
    ]
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns[2:])
    conn.execute(
        f"insert into {RUNS_TABLE} ({', '.join(columns)}, recorded_at)"
        f" values ({', '.join(['%s'] * len(values))}, now())"
        f" on conflict (dag_id, run_id) do update set {updates}, recorded_at = now()",
        values,
    )


def latest_run(conn: psycopg.Connection, dag_id: str) -> dict[str, Any] | None:
    """The most recently recorded run of a DAG, as a column → value mapping."""
    if not conn.execute("select to_regclass(%s) is not null", (RUNS_TABLE,)).fetchone()[0]:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"select * from {RUNS_TABLE} where dag_id = %s order by recorded_at desc limit 1",
            (dag_id,),
        ).fetchone()
