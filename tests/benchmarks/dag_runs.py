"""Shared by the DAG benchmarks: a private Airflow home and task durations of a dag.test() run."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def prepare_environment(workdir: Path) -> None:
    """Point Airflow and the pipeline at a private home and data folder; campaigns dry-run."""
    os.environ.update(
        {
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "JOURNEY_DATA_DIR": str(workdir / "data"),
            "JOURNEY_CAMPAIGN_MODE": "dry_run",
        }
    )


def task_durations(dag_run) -> dict[str, float]:
    """Seconds per task of a finished run (mapped tasks summed)."""
    durations: dict[str, float] = {}
    for ti in dag_run.get_task_instances():
        durations[ti.task_id] = durations.get(ti.task_id, 0.0) + (ti.duration or 0.0)
    return durations
