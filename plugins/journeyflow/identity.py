"""Follow identity merges downstream: activation rows of merged-away profiles go to survivors."""

from __future__ import annotations

import logging

import psycopg

log = logging.getLogger(__name__)

MERGE_LOG = "marts.identity_merge_log"
CURRENT_PROFILES = "marts.dim_customers"
# rules after which the previous profile id is gone (a split leaves it with the survivor part)
FOLLOWED_RULES = ("identifier_link", "survivor_changed")


def surviving_profiles(changes: list[tuple[str, str]], current: set[str]) -> dict[str, str]:
    """Map each previous profile id to the current profile it ended up in.

    `changes` are (previous, surviving) pairs, oldest first; a later change of the surviving
    profile is followed too. Ids whose chain does not end in a current profile are left out.
    """
    latest: dict[str, str] = {}
    for previous, surviving in changes:
        latest[previous] = surviving
    followed = {}
    for previous in latest:
        seen = {previous}
        profile = latest[previous]
        while profile not in current and profile in latest and profile not in seen:
            seen.add(profile)
            profile = latest[profile]
        if profile in current and profile != previous:
            followed[previous] = profile
    return followed


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def follow_profile_merges(conn: psycopg.Connection) -> dict[str, int]:
    """Re-point campaign decisions and outbox rows of merged-away profiles to the survivor.

    A row moves only when the survivor has no row of its own for the same campaign and
    trigger window (then both are kept: they record what really happened). Moving them
    means a person is never decided or messaged twice for one trigger because two of their
    profiles merged. Idempotent: a second call finds nothing left to move.
    """
    if not (_exists(conn, MERGE_LOG) and _exists(conn, CURRENT_PROFILES)):
        return {"campaign_decisions": 0, "campaign_sends": 0}
    changes = conn.execute(
        f"select previous_profile_id, surviving_profile_id from {MERGE_LOG}"
        " where rule = any(%s) order by merged_at, merge_id",
        (list(FOLLOWED_RULES),),
    ).fetchall()
    current = {row[0] for row in conn.execute(f"select profile_id from {CURRENT_PROFILES}")}
    followed = surviving_profiles(changes, current)
    moved = {"campaign_decisions": 0, "campaign_sends": 0}
    if not followed:
        return moved
    with conn.transaction():
        conn.execute("drop table if exists pg_temp.profile_survivors")
        conn.execute(
            "create temporary table profile_survivors"
            " (previous_profile_id text primary key, profile_id text not null) on commit drop"
        )
        with conn.cursor().copy("copy profile_survivors from stdin") as copy:
            for pair in followed.items():
                copy.write_row(pair)
        moved["campaign_decisions"] = _move_rows(conn, "campaign_decisions", "profile_id")
        moved["campaign_sends"] = _move_rows(conn, "campaign_sends", "send_id")
    log.info("followed profile merges: %s", moved)
    return moved


def _move_rows(conn: psycopg.Connection, table: str, first_by: str) -> int:
    """Move one row per (campaign, trigger window, survivor): the first by `first_by`."""
    return conn.execute(
        f"""
        with candidates as (
            select
                rows.campaign_id,
                rows.trigger_window,
                rows.profile_id,
                survivors.profile_id as survivor,
                row_number() over (
                    partition by rows.campaign_id, rows.trigger_window, survivors.profile_id
                    order by rows.{first_by}
                ) as pick
            from activation.{table} as rows
            inner join profile_survivors as survivors
                on survivors.previous_profile_id = rows.profile_id
            where not exists (
                select 1 from activation.{table} as own
                where own.campaign_id = rows.campaign_id
                    and own.trigger_window = rows.trigger_window
                    and own.profile_id = survivors.profile_id
            )
        )
        update activation.{table} as target
        set profile_id = candidates.survivor
        from candidates
        where candidates.pick = 1
            and target.campaign_id = candidates.campaign_id
            and target.trigger_window = candidates.trigger_window
            and target.profile_id = candidates.profile_id
        """
    ).rowcount
