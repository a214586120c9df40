"""Failure alerts: content, run link, redaction, and delivery to a local webhook."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from journeyflow import alerts
from journeyflow.redaction import redact, secret_values
from journeyflow.settings import load_settings
from tests.integration.webhook_sink import WebhookSink

API_KEY = "SG.unit-key-0042"
PASSWORD = "pg-pass-0042"


@pytest.fixture(autouse=True)
def sendgrid_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SENDGRID_DEFAULT", json.dumps({"conn_type": "generic", "password": API_KEY})
    )


def settings(**changes):
    base = replace(
        load_settings(),
        warehouse_url=f"postgresql://journey:{PASSWORD}@db.example.com:5432/journey",
        airflow_base_url="https://airflow.example.com/",
    )
    return replace(base, **changes)


def context(error: Exception, map_index: int = -1):
    ti = SimpleNamespace(
        dag_id="journey_pipeline",
        task_id="build_marts",
        run_id="scheduled__2026-11-01T00:00:00+00:00",
        map_index=map_index,
        try_number=3,
    )
    dag_run = SimpleNamespace(logical_date=datetime(2026, 11, 1, tzinfo=UTC))
    return {"ti": ti, "dag_run": dag_run, "exception": error}


def test_run_url_links_to_the_run_in_the_airflow_ui():
    url = alerts.run_url("https://airflow.example.com/", "journey_pipeline", "manual__2026+x")
    assert url == "https://airflow.example.com/dags/journey_pipeline/runs/manual__2026%2Bx"


def test_alert_names_task_error_and_run_without_secrets():
    error = RuntimeError(f"could not reach postgresql://journey:{PASSWORD}@db with key {API_KEY}")
    alert = alerts.alert_from_context(context(error, map_index=2), settings())
    assert alert.title == (
        "[journeyflow] journey_pipeline.build_marts[2] failed in run "
        "scheduled__2026-11-01T00:00:00+00:00"
    )
    assert alert.error.startswith("RuntimeError: could not reach")
    assert PASSWORD not in alert.as_text() and API_KEY not in alert.as_text()
    assert "***" in alert.error
    assert alert.run_url.startswith("https://airflow.example.com/dags/journey_pipeline/runs/")
    assert alert.try_number == 3 and alert.logical_date == "2026-11-01T00:00:00+00:00"


def test_webhook_receives_the_alert_as_json():
    alert = alerts.alert_from_context(context(ValueError("boom")), settings())
    with WebhookSink() as sink:
        outcome = alerts.deliver(alert, settings(alert_webhook_url=sink.url))
    assert outcome == {"webhook": "sent (204)"}
    assert sink.received[0]["task_id"] == "build_marts"
    assert sink.received[0]["error"] == "ValueError: boom"
    assert sink.received[0]["title"] == alert.title


def test_a_broken_channel_is_reported_not_raised():
    alert = alerts.alert_from_context(context(ValueError("boom")), settings())
    outcome = alerts.deliver(alert, settings(alert_webhook_url="http://127.0.0.1:9/hook"))
    assert outcome["webhook"].startswith("failed:")


def test_secret_values_ignore_empty_and_short_values():
    assert (
        secret_values(
            settings(sendgrid_conn_id="no_such_connection", warehouse_url="postgresql://u@h/db")
        )
        == []
    )
    assert redact(f"a {API_KEY} b", settings()) == "a *** b"
