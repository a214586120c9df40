"""What gate_marts validates of the profile marts: the profiles rebuilt since it last passed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

MICROSECOND = timedelta(microseconds=1)
PROFILE_LIST = "intermediate.int_profiles_to_rebuild"
UNCHECKED = "dq.profiles_rebuilt_unchecked"  # added to by every build (on-run-end)
PROFILES = "intermediate.int_customer_profiles"
TOUCHPOINTS = "marts.fct_touchpoints"
STORED_TOUCHPOINTS = "intermediate.int_touchpoints_unioned"
# Marts whose rows belong to one profile (profile_id), and how the rows to validate are
# kept for their suites:
# - "part": a table of the rows of the listed profiles, evaluated once per run (each
#   expectation reading them through a view found them again by index: 22 queries, 5.8 s on
#   fct_customer_stage_history with 28 % of 250,000 profiles listed); a view over the whole
#   mart when every profile is validated (a copy would cost more than the checks);
# - "table": always a table evaluated once per run (fct_customer_value: every build computes
#   it whole, as any order changes the repeat rate of every profile);
# - "view": always a view (dim_customers: the checks read stored columns only, so its rolling
#   activity counts are never computed for them).
# The restated touchpoints are kept as a "part" too.
PROFILE_MARTS = {
    "marts.dim_customers": "view",
    "marts.customer_current_stage": "part",
    "marts.fct_customer_value": "table",
    "marts.fct_customer_stage_history": "part",
    "marts.fct_stage_spell_outcomes": "part",
    "marts.fct_journey_episodes": "part",
    "marts.fct_funnel_attempts": "part",
    "marts.dim_customer_contactability": "part",
}
SCOPE_DDL = """
create schema if not exists dq;
create table if not exists dq.gate_pending_profiles (
    gate text not null,
    profile_id text
);
create index if not exists gate_pending_profiles_gate_profile
    on dq.gate_pending_profiles (gate, profile_id);
"""


@dataclass(frozen=True)
class MartScope:
    """The rows gate_marts validates: every row of the listed profiles (all of them when a
    build recomputed every profile), and the touchpoints restated after `watermark`
    through `through` plus those of listed profiles that no longer exist."""

    gate: str
    every_profile: bool
    tables: tuple[str, ...]
    watermark: datetime | None
    through: datetime | None


def validation_relation(table: str) -> str:
    """The relation a scoped suite's data asset reads (dq.<schema>__<table>__to_validate)."""
    return "dq." + table.replace(".", "__") + "__to_validate"


def _identifier(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def collect_listed_profiles(conn: psycopg.Connection, gate: str) -> bool:
    """Add the builds' rebuilt profiles to the gate's pending ones; True when every profile is.

    Every confirmed build adds its list to dq.profiles_rebuilt_unchecked, which the gate takes
    whole, so no build is missed when a gate did not run after it; with nothing taken the
    latest build's list is validated again. Pending profiles stay until the gate passes on
    them, so a failure is checked again even when later builds list other profiles.
    """
    with conn.transaction():
        conn.execute(SCOPE_DDL)
        listed = _take_unchecked(conn) or _latest_list(conn)
        rebuild_all = listed is None or listed[1]
        if rebuild_all:
            conn.execute(
                "insert into dq.gate_pending_profiles (gate, profile_id) select %(gate)s, null"
                " where not exists (select 1 from dq.gate_pending_profiles"
                " where gate = %(gate)s and profile_id is null)",
                {"gate": gate},
            )
        else:
            conn.execute(
                sql.SQL(
                    "insert into dq.gate_pending_profiles (gate, profile_id)"
                    " select distinct %(gate)s, listed.profile_id from {} as listed"
                    " where listed.profile_id is not null and not exists ("
                    " select 1 from dq.gate_pending_profiles as pending"
                    " where pending.gate = %(gate)s and pending.profile_id = listed.profile_id)"
                ).format(_identifier(listed[0])),
                {"gate": gate},
            )
        return conn.execute(
            "select exists (select 1 from dq.gate_pending_profiles"
            " where gate = %s and profile_id is null)",
            (gate,),
        ).fetchone()[0]


def _take_unchecked(conn: psycopg.Connection) -> tuple[str, bool] | None:
    """The builds' unchecked profiles moved into a temporary table: (its name, every profile),
    None when no build added any since they were last taken."""
    if conn.execute("select to_regclass(%s)", (UNCHECKED,)).fetchone()[0] is None:
        return None
    conn.execute(
        sql.SQL(
            "create temporary table taken_profiles on commit drop as"
            " with taken as (delete from {} returning profile_id)"
            " select distinct profile_id from taken"
        ).format(_identifier(UNCHECKED))
    )
    every, count = conn.execute(
        "select bool_or(profile_id is null), count(*) from taken_profiles"
    ).fetchone()
    return ("taken_profiles", every) if count else None


def _latest_list(conn: psycopg.Connection) -> tuple[str, bool] | None:
    """The latest build's list: (its relation, every profile); None when there is none."""
    if conn.execute("select to_regclass(%s)", (PROFILE_LIST,)).fetchone()[0] is None:
        return None
    row = conn.execute(
        sql.SQL("select bool_or(rebuild_all) from {} where profile_id is null").format(
            _identifier(PROFILE_LIST)
        )
    ).fetchone()
    return PROFILE_LIST, row[0] is None or row[0]


def profiles_relation(gate: str) -> str:
    """The profiles a gate's run validates (a copy of the pending ones when it started)."""
    return f"dq.{gate}__profiles_to_validate"


def _snapshot_profiles(conn: psycopg.Connection, gate: str) -> None:
    name = _identifier(profiles_relation(gate))
    conn.execute(
        sql.SQL("create unlogged table if not exists {} (profile_id text primary key)").format(name)
    )
    conn.execute(sql.SQL("truncate {}").format(name))
    conn.execute(
        sql.SQL(
            "insert into {} select distinct profile_id from dq.gate_pending_profiles"
            " where gate = %s and profile_id is not null"
        ).format(name),
        (gate,),
    )
    conn.execute(sql.SQL("analyze {}").format(name))


def _listed(gate: str) -> sql.Composable:
    """`profile_id` is one of the profiles this run validates (an index-friendly array)."""
    return sql.SQL("profile_id = any(array(select listed.profile_id from {} as listed))").format(
        _identifier(profiles_relation(gate))
    )


def read_watermark(conn: psycopg.Connection, gate: str, table: str) -> datetime | None:
    """Through when the gate last passed on a table's rows (dq.gate_watermarks)."""
    row = conn.execute(
        "select validated_through from dq.gate_watermarks where gate = %s and table_name = %s",
        (gate, table),
    ).fetchone()
    return row[0] if row else None


def advance_watermark(conn: psycopg.Connection, gate: str, table: str, through: datetime) -> None:
    """The gate passed on a table's rows through `through` (a watermark never moves back)."""
    conn.execute(
        "insert into dq.gate_watermarks (gate, table_name, validated_through)"
        " values (%s, %s, %s) on conflict (gate, table_name) do update"
        " set validated_through = greatest(gate_watermarks.validated_through,"
        " excluded.validated_through)",
        (gate, table, through),
    )


def _restated_through(
    conn: psycopg.Connection, watermark: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """(watermark, through) of the touchpoints to validate; the latest restatement again
    when nothing was restated since the watermark."""
    stored = _identifier(STORED_TOUCHPOINTS)
    latest = conn.execute(sql.SQL("select max(restated_at) from {}").format(stored)).fetchone()[0]
    if latest is None or watermark is None or latest > watermark:
        return watermark, latest
    return latest - MICROSECOND, latest


def _drop(conn: psycopg.Connection, name: str) -> None:
    """Drop a view or table of that name, whichever it is."""
    kind = conn.execute(
        "select c.relkind from pg_class c where c.oid = to_regclass(%s)", (name,)
    ).fetchone()
    if kind is None:
        return
    statement = "drop view {}" if kind[0] == "v" else "drop table {}"
    conn.execute(sql.SQL(statement).format(_identifier(name)))


def _create(conn: psycopg.Connection, name: str, kind: str, query: sql.Composable) -> None:
    _drop(conn, name)
    statement = "create view {} as {}" if kind == "view" else "create unlogged table {} as {}"
    conn.execute(sql.SQL(statement).format(_identifier(name), query))
    if kind != "view":
        conn.execute(sql.SQL("analyze {}").format(_identifier(name)))


def _validates_every_row(table: str, scope: MartScope) -> bool:
    """Whether the gate validates the whole table: every profile is listed, or (touchpoints)
    the gate has not passed on them yet."""
    return scope.every_profile or (table == TOUCHPOINTS and scope.watermark is None)


def _profile_rows(table: str, scope: MartScope) -> sql.Composable:
    query = sql.SQL("select * from {}").format(_identifier(table))
    if _validates_every_row(table, scope):
        return query
    return query + sql.SQL(" where ") + _listed(scope.gate)


def _touchpoint_rows(scope: MartScope) -> sql.Composable:
    """Touchpoints restated in the scope, and those of listed profiles that are gone; every
    touchpoint before the gate first passed or when every profile is listed."""
    query = sql.SQL("select * from {}").format(_identifier(TOUCHPOINTS))
    if _validates_every_row(TOUCHPOINTS, scope):
        return query
    restated = sql.SQL(
        "touchpoint_id = any(array(select restated.touchpoint_id from {} as restated"
        " where restated.restated_at > {} and restated.restated_at <= {}))"
    ).format(
        _identifier(STORED_TOUCHPOINTS),
        sql.Literal(scope.watermark),
        sql.Literal(scope.through or scope.watermark),
    )
    gone = sql.SQL(
        "profile_id = any(array(select listed.profile_id from {} as listed"
        " where not exists (select 1 from {} as profiles"
        " where profiles.profile_id = listed.profile_id)))"
    ).format(_identifier(profiles_relation(scope.gate)), _identifier(PROFILES))
    return query + sql.SQL(" where ") + restated + sql.SQL(" or ") + gone


def _relation_kind(table: str, scope: MartScope) -> str:
    """How the rows a scoped suite reads are kept, "view" or "table" (see PROFILE_MARTS)."""
    kind = PROFILE_MARTS.get(table, "part")
    if kind != "part":
        return kind
    return "view" if _validates_every_row(table, scope) else "table"


def prepare(conn: psycopg.Connection, gate: str, tables: list[str]) -> MartScope | None:
    """Record what this run validates and (re)create the relations the scoped suites read;
    None when the checkpoint has no profile mart."""
    scoped = tuple(table for table in tables if table in PROFILE_MARTS or table == TOUCHPOINTS)
    if not scoped:
        return None
    every_profile = collect_listed_profiles(conn, gate)
    watermark, through = _restated_through(conn, read_watermark(conn, gate, TOUCHPOINTS))
    scope = MartScope(gate, every_profile, scoped, watermark, through)
    with conn.transaction():
        _snapshot_profiles(conn, gate)
        for table in scoped:
            query = _touchpoint_rows(scope) if table == TOUCHPOINTS else _profile_rows(table, scope)
            _create(conn, validation_relation(table), _relation_kind(table, scope), query)
    return scope


def advance(conn: psycopg.Connection, scope: MartScope, failed_tables: set[str]) -> None:
    """Once the scoped marts passed every error-level check, their pending profiles are
    validated and the touchpoints' watermark moves to what was restated; otherwise the same
    rows (and whatever later builds add) are validated again next time."""
    if failed_tables & set(scope.tables):
        return
    with conn.transaction():
        conn.execute("delete from dq.gate_pending_profiles where gate = %s", (scope.gate,))
        if TOUCHPOINTS in scope.tables and scope.through is not None:
            advance_watermark(conn, scope.gate, TOUCHPOINTS, scope.through)
