"""Typed settings for the pipeline, read from environment variables in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Everything a task needs to know about its environment."""

    project_root: Path
    warehouse_url: str
    data_dir: Path
    sources_file: Path
    campaigns_file: Path
    dbt_project_dir: Path
    expectations_dir: Path
    sendgrid_host: str
    sendgrid_conn_id: str
    sendgrid_from_email: str
    campaign_mode: str
    reconcile_grace_seconds: int
    sendgrid_batch_size: int
    history_start: str = "2015-01-01"
    freshness_hours: float = 72.0
    row_drop_tolerance: float = 0.5
    retry_delay_seconds: float = 10.0
    airflow_base_url: str = "http://localhost:8080"
    alert_webhook_url: str = ""
    alert_emails: tuple[str, ...] = ()
    bi_role: str = "journey_bi"
    bi_password: str = ""
    report_dir: Path | None = None

    @property
    def dbt_target_dir(self) -> Path:
        return self.dbt_project_dir / "target"


def load_settings() -> Settings:
    """Read settings from the environment; defaults suit the local demo."""
    root = _path("JOURNEY_PROJECT_ROOT", PROJECT_ROOT)
    mode = os.environ.get("JOURNEY_CAMPAIGN_MODE", "live")
    if mode not in {"live", "sandbox", "dry_run"}:
        raise ValueError(f"JOURNEY_CAMPAIGN_MODE must be live, sandbox or dry_run, not {mode!r}")
    return Settings(
        project_root=root,
        warehouse_url=os.environ.get("JOURNEY_WAREHOUSE_URL", ""),
        data_dir=_path("JOURNEY_DATA_DIR", root / ".demo" / "data"),
        sources_file=_path("JOURNEY_SOURCES_FILE", root / "dags" / "config" / "sources.yml"),
        campaigns_file=_path("JOURNEY_CAMPAIGNS_FILE", root / "dags" / "config" / "campaigns.yml"),
        dbt_project_dir=_path("JOURNEY_DBT_PROJECT_DIR", root / "dbt_project"),
        expectations_dir=_path("JOURNEY_EXPECTATIONS_DIR", root / "expectations"),
        sendgrid_host=os.environ.get("JOURNEY_SENDGRID_HOST", "http://127.0.0.1:3025"),
        sendgrid_conn_id=os.environ.get("JOURNEY_SENDGRID_CONN_ID", "sendgrid_default"),
        sendgrid_from_email=os.environ.get("JOURNEY_SENDGRID_FROM", "journeys@example.com"),
        campaign_mode=mode,
        reconcile_grace_seconds=int(os.environ.get("JOURNEY_RECONCILE_GRACE_SECONDS", "900")),
        sendgrid_batch_size=int(os.environ.get("JOURNEY_SENDGRID_BATCH_SIZE", "1000")),
        history_start=os.environ.get("JOURNEY_HISTORY_START", "2015-01-01"),
        freshness_hours=float(os.environ.get("JOURNEY_FRESHNESS_HOURS", "72")),
        row_drop_tolerance=float(os.environ.get("JOURNEY_ROW_DROP_TOLERANCE", "0.5")),
        retry_delay_seconds=float(os.environ.get("JOURNEY_RETRY_DELAY_SECONDS", "10")),
        airflow_base_url=os.environ.get("JOURNEY_AIRFLOW_BASE_URL", "http://localhost:8080"),
        alert_webhook_url=os.environ.get("JOURNEY_ALERT_WEBHOOK_URL", ""),
        alert_emails=_list("JOURNEY_ALERT_EMAILS"),
        bi_role=os.environ.get("JOURNEY_BI_ROLE", "journey_bi"),
        bi_password=os.environ.get("JOURNEY_BI_PASSWORD", ""),
        report_dir=_path("JOURNEY_REPORT_DIR", root / ".demo" / "report"),
    )
