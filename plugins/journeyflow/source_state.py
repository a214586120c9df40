"""Per-source extraction state: which data interval was read, with what window and watermark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

STATE_TABLE = "raw._source_state"
STATE_DDL = f"""create table if not exists {STATE_TABLE} (
    source text not null,
    interval_start timestamptz,
    interval_end timestamptz not null,
    window_start timestamptz,
    window_end timestamptz not null,
    batch_id text,
    watermark timestamptz,
    rows_fetched bigint not null,
    rows_new bigint not null,
    rows_rejected bigint not null,
    run_id text,
    extracted_at timestamptz not null default now(),
    primary key (source, interval_end))"""


@dataclass(frozen=True)
class Window:
    """A data interval and the (wider, by the lookback) window of source changes read for it."""

    interval_start: datetime | None  # None: from the beginning of the source
    interval_end: datetime
    since: datetime | None  # interval_start minus the lookback
    until: datetime  # = interval_end, exclusive

    @property
    def interval_start_text(self) -> str:
        return self.interval_start.isoformat() if self.interval_start else "-infinity"

    def describe(self) -> str:
        return f"[{self.interval_start_text}, {self.interval_end.isoformat()})"

    def contains(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and moment < self.until


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def previous_interval_end(conn: psycopg.Connection, source: str, before: datetime):
    """End of the latest interval of `source` extracted before `before`, or None."""
    row = conn.execute(
        f"select max(interval_end) from {STATE_TABLE} where source = %s and interval_end < %s",
        (source, before),
    ).fetchone()
    return row[0]


def resolve_window(
    conn: psycopg.Connection,
    source: str,
    start: datetime | None,
    end: datetime,
    lookback: timedelta,
) -> Window:
    """The window an interval reads: [start - lookback, end).

    A point-in-time run (start missing or equal to end, as cron-triggered Airflow runs have)
    continues from the end of the source's previous extracted interval, or from the beginning.
    """
    start, end = _aware(start), _aware(end)
    if start is None or start >= end:
        start = previous_interval_end(conn, source, end)
    since = start - lookback if start is not None else None
    return Window(start, end, since, end)


def record_state(
    conn: psycopg.Connection,
    source: str,
    window: Window,
    batch_id: str | None,
    watermark: datetime | None,
    fetched: int,
    new_rows: int,
    rejected: int,
    run_id: str | None,
) -> None:
    """Upsert the state row of one extracted interval (the latest run of it wins)."""
    conn.execute(
        f"""insert into {STATE_TABLE} as state (source, interval_start, interval_end, window_start,
            window_end, batch_id, watermark, rows_fetched, rows_new, rows_rejected, run_id)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (source, interval_end) do update set
            interval_start = excluded.interval_start, window_start = excluded.window_start,
            window_end = excluded.window_end,
            batch_id = excluded.batch_id,
            watermark = greatest(state.watermark, excluded.watermark),
            rows_fetched = excluded.rows_fetched, rows_new = excluded.rows_new,
            rows_rejected = excluded.rows_rejected, run_id = excluded.run_id,
            extracted_at = now()""",
        (
            source,
            window.interval_start,
            window.interval_end,
            window.since,
            window.until,
            batch_id,
            watermark,
            fetched,
            new_rows,
            rejected,
            run_id,
        ),
    )
