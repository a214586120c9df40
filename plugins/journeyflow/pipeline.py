"""Task bodies of the journey_pipeline DAG: each reads settings and does one step for real."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from journeyflow import (
    access,
    activation,
    extraction,
    identity,
    loading,
    ops,
    publishing,
    quality,
    report,
    sendgrid_api,
)
from journeyflow.campaigns import load_campaign_config
from journeyflow.dbt_runner import run_dbt
from journeyflow.settings import load_settings
from journeyflow.sources import load_sources
from journeyflow.warehouse import connect

log = logging.getLogger(__name__)

REPORTING_SELECTOR = "tag:reporting"
# dbt unit tests check the models' logic on given rows, not the data: they run with the test
# suite (and in CI), not again on every pipeline run.
PIPELINE_BUILD_OPTIONS = ["--exclude-resource-type", "unit_test"]


def source_names() -> list[str]:
    """Names of the declared sources (reads only the YAML file: safe at DAG parse time)."""
    return sorted(load_sources(load_settings().sources_file))


def prepare_warehouse() -> dict:
    """Create raw, activation and dq tables so parallel tasks never race on DDL."""
    settings = load_settings()
    specs = load_sources(settings.sources_file)
    with connect(settings.warehouse_url) as conn:
        for spec in specs.values():
            loading.ensure_raw_schema(conn, spec)
        activation.ensure_activation_schema(conn)
        conn.execute(quality.RESULTS_DDL)
    return {"sources": len(specs)}


def extract(
    source_name: str,
    run_id: str | None,
    interval_end: datetime,
    interval_start: datetime | None = None,
) -> dict:
    """Load one source's new data for a data interval into raw; returns counts for the summary."""
    settings = load_settings()
    spec = load_sources(settings.sources_file)[source_name]
    with connect(settings.warehouse_url) as conn:
        loads = extraction.extract_source(
            conn, spec, settings.data_dir, run_id, interval_end, interval_start
        )
    return {
        "source": source_name,
        "kind": spec.kind,
        "files_loaded": sum(load.status == "loaded" for load in loads),
        "files_skipped": sum(load.status == "skipped" for load in loads),
        "rows_loaded": sum(load.rows_loaded for load in loads),
        "rows_rejected": sum(load.rows_rejected for load in loads),
        "rows_erased": sum(load.rows_erased for load in loads),
    }


def quality_rules(settings) -> quality.QualityRules:
    return quality.QualityRules(
        history_start=datetime.fromisoformat(settings.history_start).replace(tzinfo=UTC),
        freshness=timedelta(hours=settings.freshness_hours),
        row_drop_tolerance=settings.row_drop_tolerance,
    )


def replay_quarantine(source_name: str) -> dict:
    """Re-ingest the rejected rows of one source that a person has fixed (`_fixed_record`)."""
    from journeyflow.quarantine import replay_fixed_rows

    settings = load_settings()
    spec = load_sources(settings.sources_file)[source_name]
    with connect(settings.warehouse_url) as conn:
        return vars(replay_fixed_rows(conn, spec))


def gate(checkpoint: str, run_id: str, interval_end: datetime) -> dict:
    """Run a quality gate; persists every result and raises when an error-level check fails.

    Raw tables are validated on the rows loaded since the gate last passed on them, the
    profile marts on the profiles rebuilt since then (journeyflow.mart_scope).
    """
    settings = load_settings()
    specs = load_sources(settings.sources_file).values()
    checks, scope = quality.run_checkpoint(
        settings.expectations_dir,
        settings.warehouse_url,
        checkpoint,
        run_id,
        interval_end,
        quality_rules(settings),
        new_rows_keys={spec.table: spec.key for spec in specs},
    )
    with connect(settings.warehouse_url) as conn:
        quality.persist_results(conn, checkpoint, run_id, checks)
        quality.advance_watermarks(conn, checkpoint, scope, checks)
    return quality.enforce(checkpoint, checks)


def build_marts(as_of: datetime | None = None) -> dict:
    """dbt build (models and data tests) of everything below reporting, as of a time."""
    settings = load_settings()
    run_values = {"as_of": as_of.astimezone(UTC).isoformat()} if as_of else {}
    output = run_dbt(
        ["build", "--exclude", REPORTING_SELECTOR, *PIPELINE_BUILD_OPTIONS],
        settings.dbt_project_dir,
        settings.warehouse_url,
        run_values,
    )
    return ops.dbt_totals(output)


def build_reporting(run_id: str | None = None) -> dict:
    """dbt build of the reporting models into the build schema, aside from what BI reads."""
    settings = load_settings()
    dbt_vars = {"reporting_schema": publishing.BUILD_SCHEMA}
    output = run_dbt(
        ["build", "--select", REPORTING_SELECTOR, *PIPELINE_BUILD_OPTIONS]
        + ["--vars", json.dumps(dbt_vars)],
        settings.dbt_project_dir,
        settings.warehouse_url,
        {"run_id": run_id} if run_id else {},
    )
    return ops.dbt_totals(output)


def publish_reporting() -> list[str]:
    """Swap the validated reporting build in, atomically; returns the published tables."""
    settings = load_settings()
    with connect(settings.warehouse_url) as conn:
        access.ensure_bi_role(conn, settings.bi_role, settings.bi_password)
        return publishing.publish_schema(
            conn, publishing.BUILD_SCHEMA, publishing.LIVE_SCHEMA, readers=(settings.bi_role,)
        )


def render_journey_report() -> str:
    """Write the HTML journey report from the published reporting schema; returns its path."""
    settings = load_settings()
    path = settings.report_dir / report.REPORT_FILE
    with connect(settings.warehouse_url) as conn:
        report.write_report(conn, path)
    return str(path)


def _delivery(settings) -> activation.Delivery | None:
    """How this run talks to SendGrid; None in dry_run mode (decisions and outbox only)."""
    if settings.campaign_mode == "dry_run":
        return None
    api_key = sendgrid_api.api_key_from_connection(settings.sendgrid_conn_id)
    return activation.Delivery(
        client=sendgrid_api.make_client(api_key, settings.sendgrid_host),
        from_email=settings.sendgrid_from_email,
        sandbox=settings.campaign_mode == "sandbox",
        reconcile_grace=timedelta(seconds=settings.reconcile_grace_seconds),
        batch_size=min(settings.sendgrid_batch_size, sendgrid_api.MAX_PERSONALIZATIONS),
    )


def send_campaigns(as_of: datetime, run_id: str) -> list[dict]:
    """Decide, write the outbox and deliver every configured campaign exactly once."""
    settings = load_settings()
    config = load_campaign_config(settings.campaigns_file)
    delivery = _delivery(settings)
    with connect(settings.warehouse_url, autocommit=True) as conn:
        activation.ensure_activation_schema(conn)
        identity.follow_profile_merges(conn)
        reports = activation.run_campaigns(conn, config, as_of, run_id, delivery)
    return [vars(report) for report in reports]


def record_run(ti, dag_run) -> dict:
    """Write the run's ops.pipeline_runs row from its task instances' states and returns."""
    crumbs = [
        crumb
        for crumb in ti.get_task_breadcrumbs(dag_run.dag_id, dag_run.run_id)
        if crumb["task_id"] != ti.task_id
    ]
    returns = {
        (crumb["task_id"], crumb["map_index"]): ti.xcom_pull(
            task_ids=crumb["task_id"], map_indexes=crumb["map_index"]
        )
        for crumb in crumbs
        if str(crumb["state"]) == "success"
    }
    ended_at = datetime.now(UTC)
    tasks = ops.task_outcomes(crumbs, returns)
    record = ops.RunRecord(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=str(dag_run.run_type),
        logical_date=dag_run.logical_date,
        started_at=ops.run_start(dag_run, ended_at, tasks),
        ended_at=ended_at,
        tasks=tasks,
    )
    with connect(load_settings().warehouse_url) as conn:
        ops.write_run(conn, record)
    log.info("run %s recorded: %s (failed: %s)", record.run_id, record.state, record.failed_tasks)
    return {"state": record.state, **record.headline()}
