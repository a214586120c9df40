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
from psycopg import sql
from psycopg.rows import dict_row

from journeyflow import mart_scope
from journeyflow.warehouse import analytic_session_options, sqlalchemy_url

log = logging.getLogger(__name__)

CONNECTION_VARIABLE = "JOURNEY_GX_CONNECTION_STRING"
SAMPLE_SIZE = 5
# First pass: counts and observed values only. GX fetches a sample of unexpected values with
# one more query per column check, which reads the whole table when there are none.
COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}
WITH_SAMPLES = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
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
create table if not exists dq.gate_watermarks (
    gate text not null,
    table_name text not null,
    validated_through timestamptz not null,
    primary key (gate, table_name)
);
"""
ROW_COUNT = "expect_table_row_count_to_be_between"
COLUMN_MAX = "expect_column_max_to_be_between"
COLUMN_BOUNDS = (COLUMN_MAX, "expect_column_min_to_be_between")


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
    os.environ[CONNECTION_VARIABLE] = sqlalchemy_url(warehouse_url, analytic_session_options())
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


@dataclass(frozen=True)
class NewRows:
    """The rows of a load table a gate validates: loaded after its watermark (or sharing a
    key with such a row, so uniqueness still sees the old copy), through `through`."""

    table: str
    key: str
    watermark: datetime | None
    through: datetime | None

    @property
    def view(self) -> str:
        """The view the suite's data asset reads (dq.<schema>__<table>__to_validate)."""
        return mart_scope.validation_relation(self.table)


def new_rows(conn: psycopg.Connection, gate: str, table: str, key: str) -> NewRows:
    """What the gate validates of a load table: rows loaded since it last passed there.

    With nothing new, the latest load is validated again, so freshness still has rows.
    """
    watermark = mart_scope.read_watermark(conn, gate, table)
    name = sql.Identifier(*table.split("."))
    query = sql.SQL("select max(_loaded_at) from {}").format(name)
    if watermark is not None:
        query += sql.SQL(" where _loaded_at > %s")
    through = conn.execute(query, (watermark,) if watermark is not None else ()).fetchone()[0]
    if through is None and watermark is not None:
        latest = conn.execute(sql.SQL("select max(_loaded_at) from {}").format(name)).fetchone()[0]
        before = None if latest is None else latest - mart_scope.MICROSECOND
        return NewRows(table, key, before, latest)
    return NewRows(table, key, watermark, through)


def create_new_rows_view(conn: psycopg.Connection, rows: NewRows) -> None:
    """(Re)create the view of the rows to validate (columns follow the table's drift): the
    rows loaded since the watermark and every row sharing a key with one of them (so that a
    new row repeating an old key fails uniqueness); every row loaded so far without one."""
    table = sql.Identifier(*rows.table.split("."))
    key = sql.Identifier(rows.key)
    loaded = sql.SQL("_loaded_at > {} and _loaded_at <= {}").format(
        sql.Literal(rows.watermark or datetime.min.replace(tzinfo=UTC)),
        sql.Literal(rows.through or datetime.min.replace(tzinfo=UTC)),
    )
    query = sql.SQL("select * from {table} where {loaded}")
    if rows.watermark is not None:
        # the new keys as an array: looked up by the key index, where a semi-join read the
        # whole table (10 s instead of 0.3 s for 88,000 new of 8.8 million rows)
        query = sql.SQL(
            "select * from {table} where {key} = any(array(select {key} from {table}"
            " where {loaded}))"
            " union all select * from {table} where {key} is null and {loaded}"
        )
    view = sql.Identifier(*rows.view.split("."))
    conn.execute(sql.SQL("drop view if exists {}").format(view))
    conn.execute(
        sql.SQL("create view {view} as ").format(view=view)
        + query.format(table=table, key=key, loaded=loaded)
    )


@dataclass(frozen=True)
class GateScope:
    """What a gate validated of the tables it narrows: new raw rows, listed profiles."""

    new_rows: list[NewRows]
    marts: mart_scope.MartScope | None = None

    @property
    def tables(self) -> set[str]:
        """Tables whose suites read a narrowed relation (their row count is the whole table's)."""
        return {rows.table for rows in self.new_rows} | set(self.marts.tables if self.marts else ())


def advance_watermarks(
    conn: psycopg.Connection, gate: str, scope: GateScope, checks: list[CheckResult]
) -> None:
    """Tables whose error-level checks all passed are validated through their new rows."""
    failed = {check.table for check in checks if not check.success and check.severity == "error"}
    with conn.transaction():
        conn.execute(RESULTS_DDL)
        for rows in scope.new_rows:
            if rows.table in failed or rows.through is None:
                continue
            mart_scope.advance_watermark(conn, gate, rows.table, rows.through)
    if scope.marts is not None:
        mart_scope.advance(conn, scope.marts, failed)


def _parameter_values(check: CheckResult, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        key: parameters.get(value["$PARAMETER"]) if isinstance(value, dict) else value
        for key, value in check.kwargs.items()
    }


def _within(value: Any, kwargs: dict[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def _whole_table_row_count(conn: psycopg.Connection, check: CheckResult, parameters) -> CheckResult:
    """A row-count check of a narrowed relation, redone on the whole table it reads."""
    kwargs = _parameter_values(check, parameters)
    name = sql.Identifier(*check.table.split("."))
    count = conn.execute(sql.SQL("select count(*) from {}").format(name)).fetchone()[0]
    return replace(check, kwargs=kwargs, success=_within(count, kwargs), observed_value=count)


def _whole_table_bound(conn: psycopg.Connection, check: CheckResult, parameters) -> CheckResult:
    """A column min/max check that found no value in the narrowed rows (none new, or all
    null there), redone on the whole table: an empty narrowing is not a failure."""
    if check.success or check.observed_value is not None:
        return check
    kwargs = _parameter_values(check, parameters)
    aggregate = "max" if check.expectation == COLUMN_MAX else "min"
    value = conn.execute(
        sql.SQL("select {}({}) from {}").format(
            sql.SQL(aggregate),
            sql.Identifier(check.column),
            sql.Identifier(*check.table.split(".")),
        )
    ).fetchone()[0]
    return replace(check, kwargs=kwargs, success=_within(value, kwargs), observed_value=value)


def _on_whole_table(
    conn: psycopg.Connection, check: CheckResult, parameters, scope: GateScope
) -> CheckResult:
    """What a narrowed relation cannot tell, asked of the whole table."""
    if check.table in scope.tables and check.expectation == ROW_COUNT:
        return _whole_table_row_count(conn, check, parameters)
    if scope.marts and check.table in scope.marts.tables and check.expectation in COLUMN_BOUNDS:
        return _whole_table_bound(conn, check, parameters)
    return check


def run_checkpoint(
    expectations_dir: Path,
    warehouse_url: str,
    checkpoint: str,
    run_id: str,
    interval_end: datetime,
    rules: QualityRules,
    new_rows_keys: dict[str, str] | None = None,
) -> tuple[list[CheckResult], GateScope]:
    """Run one Great Expectations checkpoint against the warehouse and flatten its results.

    Suites of the tables in `new_rows_keys` (table -> key column) validate only the rows
    loaded since the gate last passed there (their data assets read the views
    create_new_rows_view writes); suites of the profile marts validate the profiles rebuilt
    since then (mart_scope). Their row count is checked on the whole table.
    Returns the checks and those scopes (for advance_watermarks).
    """
    from great_expectations.core.run_identifier import RunIdentifier

    context = _open_context(expectations_dir, warehouse_url)
    gx_checkpoint = context.checkpoints.get(checkpoint)
    tables = [definition.suite.name for definition in gx_checkpoint.validation_definitions]
    keys = {table: key for table, key in (new_rows_keys or {}).items() if table in tables}
    # the session settings GX's queries run with: the copies of the rows to validate find
    # them with `= any(array(...))` bitmaps, which a small work_mem makes lossy, and a lossy
    # page rechecks each of its rows against the whole array (12 minutes at 10 M touchpoints)
    with psycopg.connect(warehouse_url, options=analytic_session_options()) as conn:
        conn.execute(RESULTS_DDL)
        parameters = expectation_parameters(conn, tables, run_id, interval_end, rules)
        scope = GateScope([new_rows(conn, checkpoint, table, key) for table, key in keys.items()])
        for rows in scope.new_rows:
            create_new_rows_view(conn, rows)
        conn.commit()
        scope = replace(scope, marts=mart_scope.prepare(conn, checkpoint, tables))
    checks = [
        _check_from_result(suite_result.suite_name, outcome)
        for suite_result in _validate(gx_checkpoint, parameters, RunIdentifier(run_name=run_id))
        for outcome in suite_result.results
    ]
    with psycopg.connect(warehouse_url) as conn:
        checks = [_on_whole_table(conn, check, parameters, scope) for check in checks]
        relations = {table: mart_scope.validation_relation(table) for table in scope.tables}
        return [
            _with_unexpected_rows(conn, check, relations.get(check.table, check.table))
            for check in checks
        ], scope


def _validate(gx_checkpoint, parameters: dict[str, Any], run_id) -> list:
    """Each validation definition of the checkpoint with counts only, and again for a sample
    of unexpected values where a check failed on some (failures are rare). Without actions,
    running its definitions one by one is what running the checkpoint does; a checkpoint
    given actions runs as configured."""
    if gx_checkpoint.actions:
        result = gx_checkpoint.run(run_id=run_id, expectation_parameters=parameters)
        return list(result.run_results.values())

    def validated(definition, result_format: dict[str, Any]):
        return definition.run(
            checkpoint_id=gx_checkpoint.id,
            expectation_parameters=parameters,
            result_format=result_format,
            run_id=run_id,
        )

    results = []
    for definition in gx_checkpoint.validation_definitions:
        result = validated(definition, COUNTS_ONLY)
        if any(
            not outcome.success and (outcome.result or {}).get("unexpected_count")
            for outcome in result.results
        ):
            result = validated(definition, WITH_SAMPLES)
        results.append(result)
    return results


def _with_unexpected_rows(
    conn: psycopg.Connection, check: CheckResult, relation: str
) -> CheckResult:
    """GX reports only how many rows a failed SQL check found; add a few of them as the sample
    (from the relation the suite read)."""
    if check.success or check.expectation != "unexpected_rows_expectation":
        return check
    query = check.kwargs["unexpected_rows_query"].replace("{batch}", relation)
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
