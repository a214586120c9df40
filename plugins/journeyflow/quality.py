"""Data-quality gates: run a Great Expectations checkpoint, persist results, fail loudly."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

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


def run_checkpoint(
    expectations_dir: Path, warehouse_url: str, checkpoint: str, run_id: str
) -> list[CheckResult]:
    """Run one Great Expectations checkpoint against the warehouse and flatten its results."""
    os.environ[CONNECTION_VARIABLE] = sqlalchemy_url(warehouse_url)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # heavy import: only inside the task, never at DAG parse
    from great_expectations.core.run_identifier import RunIdentifier

    context = gx.get_context(mode="file", context_root_dir=str(expectations_dir))
    result = context.checkpoints.get(checkpoint).run(run_id=RunIdentifier(run_name=run_id))
    return [
        _check_from_result(suite_result.suite_name, outcome)
        for suite_result in result.run_results.values()
        for outcome in suite_result.results
    ]


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
