"""Failure alerts: tell a webhook and/or an e-mail inbox (through SendGrid) which task failed."""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass
from urllib.parse import quote

from journeyflow.redaction import redact
from journeyflow.settings import Settings, load_settings

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class Alert:
    """One failed task instance, with a link to its run in the Airflow UI."""

    dag_id: str
    task_id: str
    map_index: int
    run_id: str
    logical_date: str | None
    try_number: int
    error: str
    run_url: str

    @property
    def title(self) -> str:
        task = self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"
        return f"[journeyflow] {self.dag_id}.{task} failed in run {self.run_id}"

    def as_text(self) -> str:
        return (
            f"{self.title}\n\nTry: {self.try_number}\nLogical date: {self.logical_date}\n"
            f"Run: {self.run_url}\n\nError:\n{self.error}\n"
        )


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """Link to a DAG run in the Airflow 3 UI."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def alert_from_context(context, settings: Settings) -> Alert:
    """Build the alert from an Airflow task callback context; secrets are redacted."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    error = context.get("exception")
    text = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
    logical_date = getattr(dag_run, "logical_date", None)
    return Alert(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        map_index=-1 if ti.map_index is None else int(ti.map_index),
        run_id=ti.run_id,
        logical_date=logical_date.isoformat() if logical_date else None,
        try_number=int(ti.try_number or 0),
        error=redact(text, settings)[:MAX_ERROR_CHARS],
        run_url=run_url(settings.airflow_base_url, ti.dag_id, ti.run_id),
    )


def post_webhook(url: str, alert: Alert) -> int:
    """POST the alert as JSON; returns the HTTP status."""
    request = urllib.request.Request(
        url,
        data=json.dumps({**asdict(alert), "title": alert.title}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        return response.status


def send_email(settings: Settings, recipients: tuple[str, ...], alert: Alert) -> int:
    """Send the alert as a plain-text e-mail through SendGrid's v3 API; returns the status."""
    from journeyflow.sendgrid_api import api_key_from_connection, make_client

    client = make_client(api_key_from_connection(settings.sendgrid_conn_id), settings.sendgrid_host)
    body = {
        "personalizations": [{"to": [{"email": address} for address in recipients]}],
        "from": {"email": settings.sendgrid_from_email},
        "subject": alert.title,
        "content": [{"type": "text/plain", "value": alert.as_text()}],
        "categories": ["journeyflow-alert"],
    }
    return client.client.mail.send.post(request_body=body).status_code


def deliver(alert: Alert, settings: Settings) -> dict[str, str]:
    """Send the alert to every configured channel; a broken channel never hides the others."""
    outcomes: dict[str, str] = {}
    channels = []
    if settings.alert_webhook_url:
        channels.append(("webhook", lambda: post_webhook(settings.alert_webhook_url, alert)))
    if settings.alert_emails:
        channels.append(("email", lambda: send_email(settings, settings.alert_emails, alert)))
    if not channels:
        log.warning("%s (no alert channel configured)", alert.title)
    for name, send in channels:
        try:
            outcomes[name] = f"sent ({send()})"
        except Exception as error:  # an alert must never fail the callback chain
            outcomes[name] = redact(f"failed: {type(error).__name__}: {error}", settings)
        log.info("alert to %s: %s", name, outcomes[name])
    return outcomes


def notify_task_failure(context) -> None:
    """Airflow on_failure_callback: alert the configured channels about the failed task."""
    settings = load_settings()
    deliver(alert_from_context(context, settings), settings)
