"""Task bodies of the journey_pipeline DAG: each reads settings and does one step for real."""

from __future__ import annotations

import logging
from datetime import datetime

from journeyflow import activation, identity, loading, quality
from journeyflow.campaigns import load_campaigns
from journeyflow.dbt_runner import run_dbt
from journeyflow.settings import load_settings
from journeyflow.sources import load_sources
from journeyflow.warehouse import connect

log = logging.getLogger(__name__)

REPORTING_SELECTOR = "tag:reporting"


def source_names() -> list[str]:
    """Names of the declared sources (reads only the YAML file: safe at DAG parse time)."""
    return sorted(load_sources(load_settings().sources_file))


def prepare_warehouse() -> None:
    """Create raw, activation and dq tables so parallel tasks never race on DDL."""
    settings = load_settings()
    specs = load_sources(settings.sources_file)
    with connect(settings.warehouse_url) as conn:
        for spec in specs.values():
            loading.ensure_raw_schema(conn, spec)
        activation.ensure_activation_schema(conn)
        conn.execute(quality.RESULTS_DDL)


def extract(source_name: str, run_id: str) -> dict:
    """Load new or changed files of one source into raw; returns counts for the run summary."""
    settings = load_settings()
    spec = load_sources(settings.sources_file)[source_name]
    with connect(settings.warehouse_url) as conn:
        loads = loading.extract_source(conn, spec, settings.data_dir, run_id)
    return {
        "source": source_name,
        "files_loaded": sum(load.status == "loaded" for load in loads),
        "files_skipped": sum(load.status == "skipped" for load in loads),
        "rows_loaded": sum(load.rows_loaded for load in loads),
        "rows_rejected": sum(load.rows_rejected for load in loads),
    }


def gate(checkpoint: str, run_id: str) -> dict:
    """Run a quality gate; persists every result and raises when an error-level check fails."""
    settings = load_settings()
    checks = quality.run_checkpoint(
        settings.expectations_dir, settings.warehouse_url, checkpoint, run_id
    )
    with connect(settings.warehouse_url) as conn:
        quality.persist_results(conn, checkpoint, run_id, checks)
    return quality.enforce(checkpoint, checks)


def build_marts() -> None:
    """dbt build (models, data tests, unit tests) of everything below reporting."""
    settings = load_settings()
    run_dbt(
        ["build", "--exclude", REPORTING_SELECTOR], settings.dbt_project_dir, settings.warehouse_url
    )


def refresh_reporting() -> None:
    """dbt build of the reporting models BI tools read."""
    settings = load_settings()
    run_dbt(
        ["build", "--select", REPORTING_SELECTOR], settings.dbt_project_dir, settings.warehouse_url
    )


def _sendgrid_client(settings):
    from sendgrid import SendGridAPIClient

    if not settings.sendgrid_api_key:
        raise RuntimeError("JOURNEY_SENDGRID_API_KEY is not set: cannot send campaigns")
    return SendGridAPIClient(api_key=settings.sendgrid_api_key, host=settings.sendgrid_host)


def send_campaigns(as_of: datetime, run_id: str) -> list[dict]:
    """Decide, write the outbox and deliver every configured campaign exactly once."""
    settings = load_settings()
    campaigns = load_campaigns(settings.campaigns_file)
    sending = settings.campaign_mode != "dry_run"
    client = _sendgrid_client(settings) if sending else None
    reports = []
    with connect(settings.warehouse_url) as conn:
        activation.ensure_activation_schema(conn)
        identity.follow_profile_merges(conn)
        for campaign in campaigns:
            report = activation.record_decisions(conn, campaign, as_of, run_id)
            report.in_doubt = activation.count_in_doubt(conn, campaign)
            if sending:
                activation.deliver(
                    conn,
                    campaign,
                    client,
                    settings.sendgrid_from_email,
                    settings.campaign_mode == "sandbox",
                    report,
                )
            log.info(
                "%s: audience %d, to send %d, suppressed %d, sent %d, failed %d, in doubt %d",
                campaign.campaign_id,
                report.audience,
                report.decided_send,
                report.suppressed,
                report.sent,
                report.failed,
                report.in_doubt,
            )
            reports.append(vars(report))
    return reports
