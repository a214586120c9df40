"""Campaign activation: decide who gets a message, write the outbox, send through SendGrid once."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

from journeyflow.campaigns import Campaign

log = logging.getLogger(__name__)

BATCH_SIZE = 1000  # SendGrid accepts up to 1,000 personalizations per request
MAX_ATTEMPTS = 4
RETRYABLE = {429, 500, 502, 503, 504}

AUDIENCE_SQL = """
select profile_id, email, email_consent, email_status, has_open_support_case,
       current_stage, current_stage_entered_at::date as trigger_window
from marts.dim_customers
where current_stage = %(stage)s
  and current_stage_entered_at <= %(as_of)s - make_interval(days => %(min_days)s)
order by profile_id
"""


@dataclass
class SendReport:
    campaign_id: str
    audience: int = 0
    decided_send: int = 0
    suppressed: int = 0
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0


def ensure_activation_schema(conn: psycopg.Connection) -> None:
    """Create the activation schema (outbox and decision log) if missing."""
    ddl = resources.files("journeyflow").joinpath("sql/activation.sql").read_text()
    conn.execute(ddl)


def send_id_for(campaign_id: str, profile_id: str, trigger_window: Any) -> str:
    """Stable idempotency key: one message per campaign, profile and trigger window."""
    return hashlib.sha256(f"{campaign_id}|{profile_id}|{trigger_window}".encode()).hexdigest()[:24]


def decide(campaign: Campaign, person: dict[str, Any]) -> tuple[str, str]:
    """Return (decision, reason) for one audience member; the first suppression reason wins."""
    if not person["email"]:
        return "suppressed", "no_email"
    if person["email_status"] != "ok":
        return "suppressed", f"email_{person['email_status']}"
    if campaign.marketing and not person["email_consent"]:
        return "suppressed", "no_marketing_consent"
    if campaign.marketing and person["has_open_support_case"]:
        return "suppressed", "open_support_case"
    return "send", "eligible"


def record_decisions(
    conn: psycopg.Connection, campaign: Campaign, as_of: datetime, run_id: str
) -> SendReport:
    """Evaluate the audience and write decisions and pending outbox rows (first decision sticks)."""
    report = SendReport(campaign.campaign_id)
    params = {"stage": campaign.stage, "as_of": as_of, "min_days": campaign.min_days}
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        audience = cur.execute(AUDIENCE_SQL, params).fetchall()
        report.audience = len(audience)
        for person in audience:
            decision, reason = decide(campaign, person)
            key = (campaign.campaign_id, person["profile_id"], person["trigger_window"])
            cur.execute(
                "insert into activation.campaign_decisions (campaign_id, profile_id,"
                " trigger_window, decision, reason, run_id) values (%s, %s, %s, %s, %s, %s)"
                " on conflict do nothing",
                (*key, decision, reason, run_id),
            )
            if decision != "send":
                report.suppressed += 1
                continue
            report.decided_send += 1
            cur.execute(
                "insert into activation.campaign_sends (send_id, campaign_id, profile_id,"
                " trigger_window, email, template_id, status, run_id)"
                " values (%s, %s, %s, %s, %s, %s, 'pending', %s) on conflict do nothing",
                (send_id_for(*key), *key, person["email"], campaign.template_id, run_id),
            )
    return report


def _claim_pending(conn: psycopg.Connection, campaign: Campaign) -> list[dict[str, Any]]:
    """Move pending rows to `sending` and commit before any API call (at-most-once)."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "update activation.campaign_sends set status = 'sending', attempts = attempts + 1"
            " where campaign_id = %s and status = 'pending'"
            " returning send_id, profile_id, email, template_id, campaign_id",
            (campaign.campaign_id,),
        ).fetchall()


def mail_body(rows: list[dict[str, Any]], from_email: str, sandbox: bool) -> dict[str, Any]:
    """One SendGrid v3 mail/send body: a personalization per recipient carrying its send id."""
    body: dict[str, Any] = {
        "from": {"email": from_email},
        "template_id": rows[0]["template_id"],
        "personalizations": [
            {
                "to": [{"email": row["email"]}],
                "custom_args": {"send_id": row["send_id"], "campaign_id": row["campaign_id"]},
                "dynamic_template_data": {"profile_id": row["profile_id"]},
            }
            for row in rows
        ],
    }
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def _retry_delay(error: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when the error is not retryable."""
    status = getattr(error, "status_code", None) or getattr(error, "code", None)
    if status not in RETRYABLE or attempt >= MAX_ATTEMPTS:
        return None
    headers = getattr(error, "headers", None) or {}
    retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(retry_after) if retry_after else min(2.0**attempt, 30.0)
    except ValueError:
        return min(2.0**attempt, 30.0)


def post_with_retries(client, body: dict[str, Any]):
    """POST mail/send, retrying 429/5xx with backoff and Retry-After; other errors raise."""
    from python_http_client.exceptions import HTTPError

    attempt = 1
    while True:
        try:
            return client.client.mail.send.post(request_body=body)
        except HTTPError as error:
            delay = _retry_delay(error, attempt)
            if delay is None:
                raise
            log.warning("SendGrid answered %s; retrying in %.1fs", error.status_code, delay)
            time.sleep(delay)
            attempt += 1


def _mark(
    conn: psycopg.Connection,
    send_ids: list[str],
    status: str,
    message_id: str | None,
    error: str | None,
) -> None:
    with conn.transaction():
        conn.execute(
            "update activation.campaign_sends set status = %s, sg_message_id = %s, error = %s,"
            " sent_at = case when %s = 'sent' then now() end where send_id = any(%s)",
            (status, message_id, error, status, send_ids),
        )


def _error_text(error: Exception) -> str:
    body = getattr(error, "body", b"")
    detail = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return f"{getattr(error, 'status_code', '')} {detail}".strip()[:2000]


def deliver(
    conn: psycopg.Connection,
    campaign: Campaign,
    client,
    from_email: str,
    sandbox: bool,
    report: SendReport,
) -> None:
    """Send every pending outbox row of the campaign in batches; record sent or failed."""
    from python_http_client.exceptions import HTTPError

    rows = _claim_pending(conn, campaign)
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        send_ids = [row["send_id"] for row in batch]
        try:
            response = post_with_retries(client, mail_body(batch, from_email, sandbox))
        except HTTPError as error:
            _mark(conn, send_ids, "failed", None, _error_text(error))
            report.failed += len(batch)
            continue
        _mark(conn, send_ids, "sent", response.headers.get("X-Message-Id"), None)
        report.sent += len(batch)


def count_in_doubt(conn: psycopg.Connection, campaign: Campaign) -> int:
    """Rows claimed by an earlier attempt that never confirmed: never re-sent automatically."""
    query = (
        "select count(*) from activation.campaign_sends"
        " where campaign_id = %s and status = 'sending'"
    )
    return conn.execute(query, (campaign.campaign_id,)).fetchone()[0]
