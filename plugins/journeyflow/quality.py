"""Data-quality gates: run a Great Expectations checkpoint, persist results, fail loudly."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from journeyflow.warehouse import sqlalchemy_url

log = logging.getLogger(__name__)

CONNECTION_VARIABLE = "JOURNEY_GX_CONNECTION_STRING"
SAMPLE_SIZE = 5
RESULTS_DDL = """
create schema if not exists dq;
create table if not exists dq.validation_results (
    run_id text not null,
    gate text not null,
    table_name text not null,
    expectation text not null,
    column_name text,
    kwargs jsonb not null,
    success boolean not null,
    severity text not null,
    observed_value text,
    unexpected_count bigint,
    unexpected_sample jsonb,
    validated_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class QualityRules:
    """Tolerances the gates apply; defaults suit daily batches."""

    history_start: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    freshness: timedelta = timedelta(hours=72)
    row_drop_tolerance: float = 0.5
    clock_skew: timedelta = timedelta(minutes=10)


class DataQualityError(RuntimeError):
    """A gate found error-severity failures; the message names table, check and sample values."""


@dataclass(frozen=True)
class CheckResult:
    table: str
    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    success: bool
    severity: str
    observed_value: Any
    unexpected_count: int | None
    sample: list[Any]

    def describe(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        detail = f"observed {self.observed_value!r}" if self.observed_value is not None else ""
        if self.unexpected_count:
            detail = f"{self.unexpected_count} unexpected value(s), sample {self.sample!r}"
        return f"{self.table}: {self.expectation}({arguments}) failed: {detail}"


def _severity(config) -> str:
    """GX `critical` stops the gated branch (error); `warning` and `info` are recorded (warn)."""
    level = str(getattr(config, "severity", None) or "critical").lower().split(".")[-1]
    return "error" if level == "critical" else "warn"


def _check_from_result(table: str, outcome) -> CheckResult:
    config = outcome.expectation_config
    kwargs = {key: value for key, value in config.kwargs.items() if key != "batch_id"}
    result = outcome.result or {}
    return CheckResult(
        table=table,
        expectation=config.type,
        column=kwargs.get("column"),
        kwargs=kwargs,
        success=bool(outcome.success),
        severity=_severity(config),
        observed_value=result.get("observed_value"),
        unexpected_count=result.get("unexpected_count"),
        sample=list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
    )


def _open_context(expectations_dir: Path, warehouse_url: str):
    os.environ[CONNECTION_VARIABLE] = sqlalchemy_url(warehouse_url)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # heavy import: only inside the task, never at DAG parse

    return gx.get_context(mode="file", context_root_dir=str(expectations_dir))


def row_count_parameter(table: str) -> str:
    """Name of the suite parameter holding a table's minimum acceptable row count."""
    return "min_rows__" + table.replace(".", "__")


def previous_row_count(conn: psycopg.Connection, table: str, run_id: str) -> int | None:
    """Row count observed by the latest passing row-count check of another run, if any."""
    if conn.execute("select to_regclass('dq.validation_results')").fetchone()[0] is None:
        return None
    row = conn.execute(
        "select observed_value from dq.validation_results"
        " where table_name = %s and expectation = 'expect_table_row_count_to_be_between'"
        " and success and run_id <> %s order by validated_at desc limit 1",
        (table, run_id),
    ).fetchone()
    return int(json.loads(row[0])) if row and row[0] is not None else None


def minimum_row_count(previous: int | None, drop_tolerance: float) -> int:
    """At least one row; and no more of a drop than the tolerance allows vs the previous run."""
    if previous is None:
        return 1
    return max(1, math.ceil(previous * (1 - drop_tolerance)))


def expectation_parameters(
    conn: psycopg.Connection,
    tables: list[str],
    run_id: str,
    interval_end: datetime,
    rules: QualityRules,
) -> dict[str, Any]:
    """Values the suites' `$PARAMETER`s take for this run."""
    parameters: dict[str, Any] = {
        "now": datetime.now(UTC) + rules.clock_skew,
        "history_start": rules.history_start,
        "freshness_floor": interval_end - rules.freshness,
    }
    for table in tables:
        previous = previous_row_count(conn, table, run_id)
        parameters[row_count_parameter(table)] = minimum_row_count(
            previous, rules.row_drop_tolerance
        )
    return parameters


def run_checkpoint(
    expectations_dir: Path,
    warehouse_url: str,
    checkpoint: str,
    run_id: str,
    interval_end: datetime,
    rules: QualityRules,
) -> list[CheckResult]:
    """Run one Great Expectations checkpoint against the warehouse and flatten its results."""
    from great_expectations.core.run_identifier import RunIdentifier

    context = _open_context(expectations_dir, warehouse_url)
    gx_checkpoint = context.checkpoints.get(checkpoint)
    tables = [definition.suite.name for definition in gx_checkpoint.validation_definitions]
    with psycopg.connect(warehouse_url) as conn:
        parameters = expectation_parameters(conn, tables, run_id, interval_end, rules)
    result = gx_checkpoint.run(
        run_id=RunIdentifier(run_name=run_id), expectation_parameters=parameters
    )
    checks = [
        _check_from_result(suite_result.suite_name, outcome)
        for suite_result in result.run_results.values()
        for outcome in suite_result.results
    ]
    with psycopg.connect(warehouse_url) as conn:
        return [_with_unexpected_rows(conn, check) for check in checks]


def _with_unexpected_rows(conn: psycopg.Connection, check: CheckResult) -> CheckResult:
    """GX reports only how many rows a failed SQL check found; add a few of them as the sample."""
    if check.success or check.expectation != "unexpected_rows_expectation":
        return check
    query = check.kwargs["unexpected_rows_query"].replace("{batch}", check.table)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"select * from ({query}) unexpected limit {SAMPLE_SIZE}").fetchall()
    return replace(check, unexpected_count=check.observed_value, sample=rows)


def build_data_docs(expectations_dir: Path, warehouse_url: str) -> list[str]:
    """Render GX Data Docs (suites and stored validation results) as a static site."""
    context = _open_context(expectations_dir, warehouse_url)
    return list(context.build_data_docs().values())


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def persist_results(
    conn: psycopg.Connection, gate: str, run_id: str, checks: list[CheckResult]
) -> None:
    """Replace this run's results for the gate in dq.validation_results."""
    with conn.transaction():
        conn.execute(RESULTS_DDL)
        conn.execute(
            "delete from dq.validation_results where run_id = %s and gate = %s", (run_id, gate)
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into dq.validation_results (run_id, gate, table_name, expectation,"
                " column_name, kwargs, success, severity, observed_value, unexpected_count,"
                " unexpected_sample) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        run_id,
                        gate,
                        c.table,
                        c.expectation,
                        c.column,
                        _json(c.kwargs),
                        c.success,
                        c.severity,
                        None if c.observed_value is None else _json(c.observed_value),
                        c.unexpected_count,
                        _json(c.sample),
                    )
                    for c in checks
                ],
            )


def enforce(gate: str, checks: list[CheckResult]) -> dict[str, int]:
    """Raise DataQualityError on any failed error-severity check; log warnings; return counts."""
    failed = [check for check in checks if not check.success]
    errors = [check for check in failed if check.severity == "error"]
    for check in failed:
        if check.severity != "error":
            log.warning("%s warning: %s", gate, check.describe())
    if errors:
        lines = "\n".join(f"  - {check.describe()}" for check in errors)
        raise DataQualityError(f"{gate} failed {len(errors)} check(s):\n{lines}")
    return {"checks": len(checks), "failed": len(failed), "errors": 0}
