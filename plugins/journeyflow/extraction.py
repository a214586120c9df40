"""Extract one declared source into raw, whatever its kind, for one data interval."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psycopg

from journeyflow import loading
from journeyflow.loading import FileLoad
from journeyflow.source_state import record_state, resolve_window
from journeyflow.sources import SourceSpec


def _interval_records(spec: SourceSpec, window):
    """(records, origin) of an API or table source for a window."""
    if spec.kind == "http_json":
        from journeyflow.http_source import fetch_records

        return fetch_records(spec, window), spec.http.url
    from journeyflow.postgres_source import table_records

    return table_records(spec, window), spec.postgres.table


def _read_rows(spec: SourceSpec):
    if spec.kind == "sendgrid_events":
        from journeyflow.webhook_source import read_event_file

        return read_event_file
    return loading.read_source_file


def extract_source(
    conn: psycopg.Connection,
    spec: SourceSpec,
    data_dir: Path,
    run_id: str | None,
    interval_end: datetime,
    interval_start: datetime | None = None,
) -> list[FileLoad]:
    """Load a source's new data for the interval; rerunning an interval changes nothing."""
    with conn.transaction():
        loading.ensure_raw_schema(conn, spec)
        window = resolve_window(conn, spec.name, interval_start, interval_end, spec.lookback)
    if spec.by_interval:
        records, origin = _interval_records(spec, window)
        loads = [loading.load_interval(conn, spec, records, window, origin, run_id)]
        loading.refresh_statistics(conn, spec, loads)
        return loads
    loads = loading.load_files(conn, spec, data_dir, run_id, _read_rows(spec))
    loading.refresh_statistics(conn, spec, loads)
    with conn.transaction():
        record_state(
            conn,
            spec.name,
            window,
            None,
            None,
            sum(load.rows_fetched for load in loads),
            sum(load.rows_loaded for load in loads),
            sum(load.rows_rejected for load in loads),
            run_id,
        )
    return loads
