"""Airflow pools the pipeline uses: declared in dags/config/pools.json, imported at setup."""

from __future__ import annotations

import json
from pathlib import Path

from journeyflow.settings import load_settings

DBT_POOL = "warehouse_dbt"
SENDGRID_POOL = "sendgrid"


def pools_file() -> Path:
    return load_settings().project_root / "dags" / "config" / "pools.json"


def declared_pools(path: Path | None = None) -> dict[str, dict]:
    """The pools file as {name: {"slots": ..., "description": ...}}."""
    return json.loads((path or pools_file()).read_text())
