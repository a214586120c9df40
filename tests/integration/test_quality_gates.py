"""Each gate stops a real run on data broken in a named way: loud, nothing sent, BI untouched."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import psycopg
import pytest

from tests.conftest import fresh_database
from tests.integration.conftest import (
    LOGICAL_DATE,
    load_dag,
    point_pipeline_at,
    reporting_fingerprint,
)

pytestmark = pytest.mark.integration

CUSTOMERS = 250
SEED = 11


@pytest.fixture(scope="module")
def gate_env(server_url, sendgrid_sink, airflow_db, tmp_path_factory):
    """A private warehouse and data folder, with the pipeline's settings pointed at them."""
    from journeyflow.demo_data import generate_demo_data

    data_dir = tmp_path_factory.mktemp("gate-data")
    generate_demo_data(data_dir, customers=CUSTOMERS, seed=SEED, end_date=date(2026, 11, 1))
    with fresh_database(server_url, "gates") as url, pytest.MonkeyPatch.context() as patch:
        point_pipeline_at(patch, url, data_dir, sendgrid_sink.url)
        yield url, data_dir


@pytest.fixture(scope="module")
def dag(airflow_db):
    return load_dag("journey_pipeline")


@pytest.fixture(scope="module")
def gdb(gate_env):
    with psycopg.connect(gate_env[0], autocommit=True) as conn:
        yield conn


def run(dag, **kwargs) -> dict[str, str]:
    """One real DAG run; returns the state of every task instance by task id."""
    dag_run = dag.test(logical_date=LOGICAL_DATE, **kwargs)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    states["__run__"] = str(dag_run.state)
    return states


def forget_activation(db) -> None:
    """Let the next passing run decide and send again, so a blocked run has something to block."""
    db.execute("truncate activation.campaign_decisions, activation.campaign_sends")


def retract_file(db, source: str, relative_file: str) -> None:
    for table in (f"raw.{source}", f"raw.{source}__rejected"):
        db.execute(f"delete from {table} where _source_file = %s", (relative_file,))
    db.execute("delete from raw._load_batches where source_file = %s", (relative_file,))


def latest_gate_failure(db, gate: str) -> list[tuple]:
    return db.execute(
        "select table_name, expectation, column_name, unexpected_sample::text, observed_value"
        " from dq.validation_results where gate = %s and not success and severity = 'error'"
        " and run_id = (select run_id from dq.validation_results where gate = %s"
        " order by validated_at desc limit 1)",
        (gate, gate),
    ).fetchall()


@pytest.fixture(scope="module")
def clean_run(dag, gate_env, gdb, sendgrid_sink):
    before = len(sendgrid_sink.messages())
    states = run(dag)
    return states, len(sendgrid_sink.messages()) - before


@pytest.fixture()
def blocked_run(dag, gdb, sendgrid_sink, clean_run):
    """Run the DAG on broken data; check that nothing was sent and reporting did not change."""

    def check(**kwargs) -> dict[str, str]:
        forget_activation(gdb)
        messages, reporting = len(sendgrid_sink.messages()), reporting_fingerprint(gdb)
        states = run(dag, **kwargs)
        assert states["__run__"] == "failed"
        for task in ("send_campaigns", "build_reporting", "gate_reporting", "publish_reporting"):
            assert states[task] == "upstream_failed", (task, states[task])
        assert len(sendgrid_sink.messages()) == messages
        assert gdb.execute("select count(*) from activation.campaign_sends").fetchone()[0] == 0
        assert reporting_fingerprint(gdb) == reporting
        return states

    return check


def test_clean_run_passes_every_gate_and_sends(clean_run):
    states, sent = clean_run
    assert states["__run__"] == "success"
    assert {states[g] for g in ("gate_raw", "gate_marts", "gate_reporting")} == {"success"}
    assert sent > 0


ORDERS_HEADER = "order_id,customer_email,amount,currency,status,ts\n"


@contextmanager
def delivered_file(gate_env, gdb, relative: str, text: str) -> Iterator[None]:
    """A source file present for the runs inside the block, then removed with its raw rows."""
    path = gate_env[1] / relative
    path.write_text(text)
    try:
        yield
    finally:
        path.unlink()
        retract_file(gdb, relative.split("/")[0], relative)


def test_negative_amounts_fail_gate_raw(blocked_run, gate_env, gdb):
    refund = "neg-1,someone@example.com,-25.00,USD,completed,2026-10-30T10:00:00Z\n"
    with delivered_file(gate_env, gdb, "orders/orders_refunds.csv", ORDERS_HEADER + refund):
        states = blocked_run()
    assert states["gate_raw"] == "failed"
    failures = latest_gate_failure(gdb, "gate_raw")
    assert ("raw.orders", "expect_column_values_to_be_between", "amount", "[-25.00]", None) in [
        (t, e, c, s.replace('"', ""), o) for t, e, c, s, o in failures
    ]


def test_duplicate_keys_fail_gate_raw(blocked_run, gate_env, gdb):
    first_line = (gate_env[1] / "orders" / "orders.csv").read_text().splitlines()[1]
    duplicate_id = first_line.split(",")[0]
    resent = ORDERS_HEADER + first_line + "\n"
    with delivered_file(gate_env, gdb, "orders/orders_resent.csv", resent):
        states = blocked_run()
    assert states["gate_raw"] == "failed"
    failures = latest_gate_failure(gdb, "gate_raw")
    assert [
        sample
        for table, expectation, column, sample, _ in failures
        if (table, expectation, column)
        == ("raw.orders", "expect_column_values_to_be_unique", "order_id")
    ] == [f'["{duplicate_id}", "{duplicate_id}"]']


def test_bad_rows_fail_gate_raw_again_until_fixed(blocked_run, gate_env, gdb):
    """gate_raw validates what was loaded since it last passed: a failure is not forgotten."""
    odd = "odd-1,someone@example.com,10.00,USD,lost_in_mail,2026-10-30T10:00:00Z\n"
    with delivered_file(gate_env, gdb, "orders/orders_unknown_status.csv", ORDERS_HEADER + odd):
        for _ in range(2):  # the second run loads nothing new: the same rows fail again
            states = blocked_run()
            assert states["gate_raw"] == "failed"
            assert ("raw.orders", "expect_column_values_to_be_in_set", "status") in [
                (t, e, c) for t, e, c, _, _ in latest_gate_failure(gdb, "gate_raw")
            ]


def test_late_empty_batch_fails_gate_raw(blocked_run, gate_env, gdb):
    with delivered_file(gate_env, gdb, "web_events/web_events_late.jsonl", ""):
        states = blocked_run()
    assert states["gate_raw"] == "failed"
    [(table, expectation, sample)] = [
        (t, e, s) for t, e, _, s, _ in latest_gate_failure(gdb, "gate_raw")
    ]
    assert (table, expectation) == ("raw._load_batches", "unexpected_rows_expectation")
    assert "web_events/web_events_late.jsonl" in sample


def test_ninety_percent_drop_in_row_count_fails_gate_raw(blocked_run, gate_env, gdb, tmp_path):
    orders = gate_env[1] / "orders" / "orders.csv"
    original = tmp_path / "orders.csv"
    shutil.copy(orders, original)
    lines = orders.read_text().splitlines()
    orders.write_text("\n".join(lines[: 1 + (len(lines) - 1) // 10]) + "\n")
    try:
        states = blocked_run()
    finally:
        shutil.copy(original, orders)
    assert states["gate_raw"] == "failed"
    failures = latest_gate_failure(gdb, "gate_raw")
    assert [(t, e) for t, e, _, _, _ in failures] == [
        ("raw.orders", "expect_table_row_count_to_be_between")
    ]


def test_unknown_stage_fails_gate_marts(blocked_run, gdb):
    gdb.execute(
        "update marts.fct_customer_stage_history set stage = 'evangelist'"
        " where stage_spell_id in (select stage_spell_id from marts.fct_customer_stage_history"
        " where stage = 'retention' order by stage_spell_id limit 3)"
    )
    try:
        states = blocked_run(mark_success_pattern="build_marts")
    finally:  # later tests take these marts as built: leave no unknown stage behind
        gdb.execute(
            "update marts.fct_customer_stage_history set stage = 'retention'"
            " where stage = 'evangelist'"
        )
    assert states["gate_raw"] == "success"
    assert states["gate_marts"] == "failed"
    failures = latest_gate_failure(gdb, "gate_marts")
    assert (
        "marts.fct_customer_stage_history",
        "expect_column_values_to_be_in_set",
        "stage",
        '["evangelist", "evangelist", "evangelist"]',
        None,
    ) in failures


def test_bad_reporting_build_is_never_published(dag, gdb, clean_run):
    """Write-audit-publish: a reporting build that fails its gate stays aside; BI sees the old."""
    reporting = reporting_fingerprint(gdb)
    gdb.execute(
        "update marts.kpi_stage_daily set conversion_rate = 1.5"
        " where (day, stage) in (select day, stage from marts.kpi_stage_daily"
        " where conversion_rate is not null order by day, stage limit 2)"
    )
    # The marts are taken as built and gated: only the reporting gate can catch this.
    states = run(dag, mark_success_pattern="^(build_marts|gate_marts)$")
    assert states["build_reporting"] == "success"
    assert states["gate_reporting"] == "failed"
    assert states["publish_reporting"] == "upstream_failed"
    assert reporting_fingerprint(gdb) == reporting
    failures = latest_gate_failure(gdb, "gate_reporting")
    assert [(t, e, c, s) for t, e, c, s, _ in failures] == [
        (
            "reporting__build.rpt_funnel_daily",
            "expect_column_values_to_be_between",
            "conversion_rate",
            '["1.5", "1.5"]',
        )
    ]


def test_fixed_data_passes_again_and_sends_what_was_held_back(dag, gdb, sendgrid_sink):
    forget_activation(gdb)
    before = len(sendgrid_sink.messages())
    states = run(dag)
    assert states["__run__"] == "success"
    assert len(sendgrid_sink.messages()) > before
