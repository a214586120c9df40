"""Credentials of external systems, read from Airflow connections (never from the sources file)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


class SourceConnectionError(RuntimeError):
    """An Airflow connection a source needs is missing or incomplete."""


@dataclass(frozen=True)
class HttpCredentials:
    base_url: str
    token: str | None


def get_connection(conn_id: str):
    """The Airflow connection `conn_id`: AIRFLOW_CONN_<ID>, a secrets backend or Airflow's DB."""
    from airflow.sdk import BaseHook  # imported lazily: only tasks need it

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as error:  # noqa: BLE001 - Airflow raises several types for "not found"
        raise SourceConnectionError(
            f"Airflow connection {conn_id!r} is not defined (add it in Airflow, or set "
            f"AIRFLOW_CONN_{conn_id.upper()}): {error}"
        ) from error


def http_credentials(conn_id: str) -> HttpCredentials:
    """Base URL (scheme://host[:port]) and bearer token (the password) of an HTTP connection."""
    connection = get_connection(conn_id)
    host = connection.host or ""
    if host and "://" not in host:
        host = f"{connection.schema or 'https'}://{host}"
    if host and connection.port:
        host = f"{host}:{connection.port}"
    return HttpCredentials(base_url=host.rstrip("/"), token=connection.password or None)


def postgres_url(conn_id: str) -> str:
    """A libpq URL for a Postgres connection."""
    connection = get_connection(conn_id)
    if not connection.host:
        raise SourceConnectionError(f"Airflow connection {conn_id!r} has no host")
    auth = quote(connection.login or "postgres", safe="")
    if connection.password:
        auth += ":" + quote(connection.password, safe="")
    port = connection.port or 5432
    return f"postgresql://{auth}@{connection.host}:{port}/{quote(connection.schema or 'postgres')}"
