"""`make demo`'s command on a machine without a PostgreSQL server: embedded warehouse, full run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from journeyflow.cli import DEMO_API_KEY
from tests.conftest import PIPELINE_TASKS

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end_on_an_embedded_warehouse(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "JOURNEY_"))
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "journeyflow.cli",
            "demo",
            "--customers",
            "400",
            "--seed",
            "3",
            "--warehouse",
            "embedded",
            "--workdir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout
    assert result.returncode == 0, output[-4000:] + result.stderr[-4000:]
    assert "embedded PostgreSQL" in output
    for task in PIPELINE_TASKS:
        assert f"  > {task}" in output
    assert "= run finished: success" in output
    for heading in (
        "Rows per source",
        "Resolved profiles:",
        "Customers per current journey stage",
        "Headline KPIs:",
        "Campaign decisions",
        "Outbox",
        "Quality gates",
        "Reporting tables published",
        "wall time",
        "Recorded in ops.pipeline_runs: success",
        "extract web_events",
    ):
        assert heading in output
    assert "reporting.rpt_funnel_daily" in output
    airflow_log = (tmp_path / ".demo" / "airflow-dags-test.log").read_text()
    assert "SendReport(campaign_id='consideration_nudge'" in airflow_log  # task logs are in it
    assert DEMO_API_KEY not in airflow_log + output + result.stderr
    assert (tmp_path / ".warehouse" / "pgdata").is_dir()
