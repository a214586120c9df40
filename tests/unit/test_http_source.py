"""http_json sources against a real HTTP server on loopback: paging, auth, retries, intervals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from journeyflow.http_source import HttpSourceError, fetch_records, retry_after_seconds
from journeyflow.source_state import Window
from journeyflow.sources import parse_sources
from tests.fake_api import FakeApi

DAY = datetime(2026, 10, 2, tzinfo=UTC)


def _spec(pagination=None, **extra):
    body = {
        "kind": "http_json",
        "connection": "crm_api",
        "url": "/v1/contacts",
        "records_path": "data",
        "incremental": {"param": "updated_since", "field": "updated_at", "lookback": "1h"},
        "backoff_seconds": 0.5,
        "max_retries": 3,
        "key": "id",
        "columns": {
            "id": {"type": "text", "required": True},
            "email": {"type": "text"},
            "updated_at": {"type": "timestamp", "required": True},
        },
        **extra,
    }
    if pagination is not None:
        body["pagination"] = pagination
    return parse_sources({"sources": {"contacts": body}})["contacts"]


def _contacts(count: int, start: datetime = DAY) -> list[dict]:
    return [
        {
            "id": f"c{i}",
            "email": f"c{i}@example.com",
            "updated_at": (start + timedelta(hours=2 * i)).isoformat(),
        }
        for i in range(count)
    ]


@pytest.fixture()
def api(monkeypatch):
    with FakeApi() as server:
        connection = {"conn_type": "http", "host": server.url, "password": server.token}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
        yield server


def _window(start=DAY, end=DAY + timedelta(days=1), lookback=timedelta(hours=1)) -> Window:
    return Window(start, end, start - lookback if start else None, end)


def _ids(records) -> list[str]:
    return [record.parsed["id"] for record in records]


@pytest.mark.parametrize(
    "pagination",
    [
        {"type": "cursor", "cursor_param": "cursor", "next_cursor_path": "meta.next_cursor"},
        {"type": "page", "page_param": "page", "size_param": "per_page", "page_size": 4},
        {"type": "offset", "offset_param": "offset", "size_param": "limit", "page_size": 5},
    ],
)
def test_every_page_is_read_with_the_bearer_token(api, pagination):
    api.records = _contacts(11)  # 22 hours of changes, all inside the day
    sleeps: list[float] = []
    records = list(fetch_records(_spec(pagination), _window(), sleep=sleeps.append))
    assert _ids(records) == [f"c{i}" for i in range(11)]
    assert len(api.requests) >= 3
    assert {request["auth"] for request in api.requests} == {f"Bearer {api.token}"}
    assert sleeps == []
    assert records[0].origin.startswith(f"{api.url}/v1/contacts?")
    assert json.loads(records[0].record_json) == api.records[0]


def test_incremental_parameter_and_interval_bounds(api):
    api.records = _contacts(20, start=DAY - timedelta(hours=4))  # from 20:00 the day before
    pagination = {"type": "cursor", "next_cursor_path": "meta.next_cursor"}
    records = list(fetch_records(_spec(pagination), _window(), sleep=lambda s: None))
    since = api.requests[0]["query"]["updated_since"]
    assert datetime.fromisoformat(since) == DAY - timedelta(hours=1)
    changed = [datetime.fromisoformat(r.parsed["updated_at"]) for r in records]
    assert min(changed) >= DAY - timedelta(hours=1)
    assert max(changed) < DAY + timedelta(days=1)
    assert len(records) == 12  # 00:00 .. 22:00 (20:00 and 22:00 the day before fall outside)


def test_429_is_retried_after_the_retry_after_delay(api):
    api.records = _contacts(4)
    api.fail_next(429, times=2, retry_after="7")
    sleeps: list[float] = []
    cursor = {"type": "cursor", "next_cursor_path": "meta.next_cursor"}
    records = list(fetch_records(_spec(cursor), _window(), sleep=sleeps.append))
    assert len(records) == 4
    assert sleeps == [7.0, 7.0]


def test_5xx_is_retried_with_exponential_backoff_then_fails(api):
    api.records = _contacts(2)
    api.fail_next(503, times=2)
    sleeps: list[float] = []
    assert len(list(fetch_records(_spec(), _window(), sleep=sleeps.append))) == 2
    assert sleeps == [0.5, 1.0]

    api.fail_next(500, times=10)
    sleeps.clear()
    with pytest.raises(HttpSourceError, match=r"HTTP 500 .*after 4 attempts"):
        list(fetch_records(_spec(), _window(), sleep=sleeps.append))
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_other_4xx_fail_at_once_without_retry(api, status):
    api.fail_next(status)
    sleeps: list[float] = []
    with pytest.raises(HttpSourceError, match=f"HTTP {status}.*not retried"):
        list(fetch_records(_spec(), _window(), sleep=sleeps.append))
    assert sleeps == []
    assert len(api.requests) == 1


def test_wrong_token_is_a_401_and_is_not_retried(api, monkeypatch):
    connection = {"conn_type": "http", "host": api.url, "password": "wrong"}
    monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
    with pytest.raises(HttpSourceError, match="HTTP 401"):
        list(fetch_records(_spec(), _window(), sleep=lambda s: None))
    assert len(api.requests) == 1


def test_real_wait_honours_retry_after(api):
    api.records = _contacts(1)
    api.fail_next(429, retry_after="1")
    import time

    started = time.monotonic()
    assert len(list(fetch_records(_spec(), _window()))) == 1
    assert time.monotonic() - started >= 1.0


def test_missing_connection_names_it(monkeypatch):
    from journeyflow.connections import SourceConnectionError

    monkeypatch.delenv("AIRFLOW_CONN_CRM_API", raising=False)
    with pytest.raises(SourceConnectionError, match="'crm_api'.*AIRFLOW_CONN_CRM_API"):
        list(fetch_records(_spec(), _window()))


def test_records_path_must_hold_an_array(api):
    spec = _spec(records_path="meta")
    api.records = _contacts(1)
    with pytest.raises(HttpSourceError, match="expected a JSON array of records at 'meta'"):
        list(fetch_records(spec, _window(), sleep=lambda s: None))


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds("Fri, 02 Oct 2026 12:00:45 GMT", now) == 45
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
