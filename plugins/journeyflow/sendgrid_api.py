"""SendGrid v3 access: API key from an Airflow connection, mail bodies, retries, Email Activity.

The API key is read from the Airflow connection (password field) and never logged: Airflow
masks connection passwords in task logs, and the SendGrid client's own debug log (which prints
request headers) is redacted here for runs outside Airflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

MAX_PERSONALIZATIONS = 1000  # SendGrid accepts up to 1,000 personalizations per request
MAX_SCHEDULE_AHEAD_HOURS = 72  # SendGrid rejects send_at further ahead than this
RETRYABLE = {429, 500, 502, 503, 504}
MAX_ATTEMPTS = 4
MAX_BACKOFF_SECONDS = 30.0
BATCH_ARG = "send_batch"  # custom arg naming the request, for Email Activity look-ups
CLIENT_LOGGERS = ("python_http_client.client", "sendgrid")
REDACTED = "***"


class SendGridConnectionError(RuntimeError):
    """The Airflow connection holding the SendGrid API key is missing or empty."""


class ActivityUnavailable(RuntimeError):
    """The Email Activity API cannot be used (not purchased, or the key lacks access)."""


class _RedactSecret(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, REDACTED), None
        return True


def redact_in_client_logs(secret: str) -> None:
    """Make the SendGrid client's loggers replace `secret` (e.g. in logged headers)."""
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecret) and f.secret == secret for f in logger.filters):
            logger.addFilter(_RedactSecret(secret))


def api_key_from_connection(conn_id: str) -> str:
    """The SendGrid API key: the password of the Airflow connection `conn_id`."""
    from airflow.sdk import BaseHook

    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as error:  # AirflowNotFoundException and secrets-backend failures
        raise SendGridConnectionError(
            f"Airflow connection {conn_id!r} is not available ({type(error).__name__}); define it"
            f" with the SendGrid API key as password, e.g. AIRFLOW_CONN_{conn_id.upper()}"
        ) from None
    if not connection.password:
        raise SendGridConnectionError(f"Airflow connection {conn_id!r} has no password (API key)")
    return connection.password


def configured_api_key(conn_id: str) -> str:
    """The API key when the connection is defined, else an empty string (nothing to protect)."""
    try:
        return api_key_from_connection(conn_id)
    except SendGridConnectionError:
        return ""


def make_client(api_key: str, host: str):
    """A SendGrid client for `host` whose logs never show the key."""
    from sendgrid import SendGridAPIClient

    redact_in_client_logs(api_key)
    return SendGridAPIClient(api_key=api_key, host=host)


def batch_id_for(send_ids: list[str], attempt: int) -> str:
    """Deterministic id of one request: its messages and the attempt number."""
    text = "|".join(sorted(send_ids)) + f"#{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def json_safe(value: Any) -> Any:
    """Template data as JSON: decimals as numbers, dates and times as ISO-8601 text."""
    return json.loads(json.dumps(value, default=_json_default))


def mail_body(
    rows: list[dict[str, Any]],
    from_email: str,
    sandbox: bool,
    batch_id: str,
    now: datetime,
) -> dict[str, Any]:
    """One v3 mail/send body: a personalization per outbox row, carrying its send id.

    Rows share campaign and template. A row held for quiet hours carries `send_at` while that
    moment is still ahead; once it has passed the message goes out at once.
    """
    personalizations = []
    for row in rows:
        personalization: dict[str, Any] = {
            "to": [{"email": row["email"]}],
            "custom_args": {
                "send_id": row["send_id"],
                "campaign_id": row["campaign_id"],
                "variant": row["variant"] or "default",
            },
            "dynamic_template_data": json_safe(row["template_data"] or {}),
        }
        if row["send_at"] is not None and row["send_at"] > now:
            personalization["send_at"] = int(row["send_at"].timestamp())
        personalizations.append(personalization)
    body: dict[str, Any] = {
        "from": {"email": from_email},
        "template_id": rows[0]["template_id"],
        "custom_args": {BATCH_ARG: batch_id},
        "personalizations": personalizations,
    }
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def _status(error: Exception) -> int | None:
    return getattr(error, "status_code", None) or getattr(error, "code", None)


def retry_delay(error: Exception, attempt: int, max_attempts: int = MAX_ATTEMPTS) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when the error is final."""
    if _status(error) not in RETRYABLE or attempt >= max_attempts:
        return None
    headers = getattr(error, "headers", None) or {}
    retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
    backoff = min(2.0**attempt, MAX_BACKOFF_SECONDS)
    try:
        return max(0.0, float(retry_after)) if retry_after is not None else backoff
    except ValueError:  # an HTTP date instead of seconds: fall back to backoff
        return backoff


def with_retries(
    call: Callable[[], Any],
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
):
    """Run an API call, retrying 429 and 5xx with backoff and Retry-After; other errors raise."""
    from python_http_client.exceptions import HTTPError

    attempt = 1
    while True:
        try:
            return call()
        except HTTPError as error:
            delay = retry_delay(error, attempt, max_attempts)
            if delay is None:
                raise
            log.warning(
                "SendGrid answered %s (attempt %d of %d); retrying in %.1f s",
                _status(error),
                attempt,
                max_attempts,
                delay,
            )
            sleep(delay)
            attempt += 1


def post_mail(client, body: dict[str, Any], sleep=time.sleep, max_attempts: int = MAX_ATTEMPTS):
    """POST /v3/mail/send with retries; returns the response."""
    return with_retries(
        lambda: client.client.mail.send.post(request_body=body), sleep, max_attempts
    )


def find_batch(client, batch_id: str, sleep=time.sleep) -> list[dict[str, Any]]:
    """Messages SendGrid's Email Activity knows for a request tagged with `batch_id`."""
    from python_http_client.exceptions import HTTPError

    query = f"unique_args['{BATCH_ARG}']=\"{batch_id}\""
    try:
        response = with_retries(
            lambda: client.client.messages.get(
                query_params={"query": query, "limit": MAX_PERSONALIZATIONS}
            ),
            sleep,
        )
    except HTTPError as error:
        if _status(error) in (401, 403, 404):
            raise ActivityUnavailable(f"Email Activity API answered {_status(error)}") from None
        raise
    return json.loads(response.body or b"{}").get("messages", [])


def error_text(error: Exception) -> str:
    """SendGrid's status and error body, for the outbox `error` column."""
    body = getattr(error, "body", b"")
    detail = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return f"{_status(error) or ''} {detail}".strip()[:2000]
