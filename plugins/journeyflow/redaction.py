"""Keep secrets (SendGrid API key, warehouse password) out of task logs and alerts."""

from __future__ import annotations

from journeyflow.sendgrid_api import configured_api_key
from journeyflow.settings import Settings, load_settings
from journeyflow.warehouse import connection_parts

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


def secret_values(settings: Settings) -> list[str]:
    """The secret strings in the settings, longest first."""
    candidates = [configured_api_key(settings.sendgrid_conn_id)]
    if settings.warehouse_url:
        candidates.append(connection_parts(settings.warehouse_url)["password"])
    secrets = {value for value in candidates if value and len(value) >= MIN_SECRET_LENGTH}
    return sorted(secrets, key=len, reverse=True)


def redact(text: str, settings: Settings) -> str:
    """The text with every secret value replaced by ***."""
    for secret in secret_values(settings):
        text = text.replace(secret, MASK)
    return text


def mask_task_secrets(context=None) -> None:
    """Airflow on_execute_callback: register the secrets with Airflow's log masker."""
    from airflow.sdk.log import mask_secret

    for secret in secret_values(load_settings()):
        mask_secret(secret)
