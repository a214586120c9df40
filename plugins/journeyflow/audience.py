"""Audience queries: who each campaign trigger selects, per trigger window, with decision facts.

Every query reads the marts as of the run's `as_of` (the data interval end), never the clock.
The person columns are those of `marts.dim_customers` plus `marts.dim_customer_contactability`
(name, country, time zone, e-mail suppression facts), so SQL predicates and template data can
use any of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from journeyflow.campaigns import GLOBAL_CONTROL, Campaign, CampaignConfigError, Policy

CONTACTABILITY_COLUMNS = (
    "first_name",
    "country",
    "time_zone",
    "unsubscribed_at",
    "spam_reported_at",
    "undeliverable_reason",
    "undeliverable_at",
)
SPELL_TRIGGERS = ("sql",)


# Columns marts.dim_customers computes when read, from every profile's touchpoints of the last
# 90 days: a snapshot of all profiles spends most of its time on them, so it holds them only
# when a campaign uses them (in a `sql` predicate or its template data). Left out, the view's
# join to that aggregation is removed by the planner and the aggregation never runs.
ROLLING_ACTIVITY_COLUMNS = (
    "touchpoints_last_30d",
    "touchpoints_last_90d",
    "active_days_last_30d",
    "active_days_last_90d",
)
WORD = re.compile(r"[a-z_][a-z0-9_$]*")


def _dim_columns(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'marts' and table_name = 'dim_customers' order by ordinal_position"
    ).fetchall()
    if not rows:
        raise RuntimeError("marts.dim_customers does not exist: build the marts first")
    return [name for (name,) in rows if name not in CONTACTABILITY_COLUMNS]


def columns_used(campaigns: Iterable[Campaign]) -> set[str]:
    """Every word of the campaigns' `sql` predicates and every template data column: a
    superset of the profile columns they read."""
    used: set[str] = set()
    for campaign in campaigns:
        used.update(WORD.findall((campaign.trigger.predicate or "").lower()))
        used.update(column for _, column in campaign.template_data)
    return used


def people_sql(conn: psycopg.Connection, used: set[str] | None = None) -> sql.Composed:
    """Every profile with the columns campaigns may use, and `as_of`.

    With `used` (see `columns_used`), rolling activity columns that no campaign uses are left out.
    """
    columns = [
        column
        for column in _dim_columns(conn)
        if used is None or column not in ROLLING_ACTIVITY_COLUMNS or column in used
    ]
    dim = sql.SQL(", ").join(sql.SQL("d.{}").format(sql.Identifier(c)) for c in columns)
    contact = sql.SQL(", ").join(
        sql.SQL("c.{}").format(sql.Identifier(c)) for c in CONTACTABILITY_COLUMNS
    )
    return sql.SQL(
        "select {dim}, {contact}, cast(%(as_of)s as timestamptz) as as_of"
        " from marts.dim_customers d"
        " left join marts.dim_customer_contactability c on c.profile_id = d.profile_id"
    ).format(dim=dim, contact=contact)


def snapshot_people(
    conn: psycopg.Connection, as_of: datetime, campaigns: Iterable[Campaign]
) -> sql.Composed:
    """Evaluate people_sql once into a temporary table (dropped at commit) the triggers read.

    `marts.dim_customers` computes rolling counts against `as_of` at read time; one evaluation
    per run instead of one per campaign (and per `sql` audience update), and none of the
    counts that no campaign uses.
    """
    conn.execute("drop table if exists audience_people")
    conn.execute(
        sql.SQL("create temporary table audience_people on commit drop as {people}").format(
            people=people_sql(conn, columns_used(campaigns))
        ),
        {"as_of": as_of},
    )
    conn.execute("create index on audience_people (profile_id)")
    conn.execute("analyze audience_people")
    return sql.SQL("select * from audience_people")


def _utc_day(expression: str) -> sql.SQL:
    return sql.SQL(f"cast(timezone('UTC', {expression}) as date)")


def _window(campaign: Campaign, natural: str) -> sql.SQL:
    """The trigger window: the trigger's own day, or the run's day under `every_days` limits."""
    if campaign.entry_limit.kind == "every_days":
        return _utc_day("cast(%(as_of)s as timestamptz)")
    return _utc_day(natural)


def trigger_sql(campaign: Campaign, people: sql.Composable) -> sql.Composed:
    """People the trigger selects, with `trigger_window` (the day the window started)."""
    trigger = campaign.trigger
    if trigger.kind == "stalled_in_stage":
        return sql.SQL(
            "select p.*, {window} as trigger_window from ({people}) p"
            " where p.current_stage = %(stage)s"
            " and p.current_stage_entered_at <= %(as_of)s - make_interval(days => %(days)s)"
        ).format(people=people, window=_window(campaign, "p.current_stage_entered_at"))
    if trigger.kind == "entered_stage":
        return sql.SQL(
            "select p.*, {window} as trigger_window from ({people}) p"
            " join marts.fct_customer_stage_history h on h.profile_id = p.profile_id"
            " where h.stage = %(stage)s and h.entered_at <= %(as_of)s"
            " and h.entered_at > %(as_of)s - make_interval(days => %(within_days)s)"
        ).format(people=people, window=_window(campaign, "h.entered_at"))
    if trigger.kind == "abandoned":
        return sql.SQL(
            "with last_step as ("
            " select profile_id, max(occurred_at) as step_at from marts.fct_touchpoints"
            " where touchpoint_type = any(%(steps)s) and occurred_at <= %(as_of)s"
            " group by profile_id)"
            " select p.*, {window} as trigger_window from ({people}) p"
            " join last_step s on s.profile_id = p.profile_id"
            " where s.step_at <= %(as_of)s - make_interval(hours => %(after_hours)s)"
            " and s.step_at > %(as_of)s - make_interval(hours => %(after_hours)s)"
            "   - make_interval(days => %(within_days)s)"
            " and not exists (select 1 from marts.fct_touchpoints t"
            "   where t.profile_id = p.profile_id and t.touchpoint_type = any(%(without)s)"
            "   and t.occurred_at > s.step_at and t.occurred_at <= %(as_of)s)"
        ).format(people=people, window=_window(campaign, "s.step_at"))
    if campaign.entry_limit.kind == "every_days":
        window = _window(campaign, "")
    else:
        window = sql.SQL("spell.entered_on")
    return sql.SQL(
        "select p.*, {window} as trigger_window from ({people}) p"
        " join activation.campaign_audience_spells spell on spell.profile_id = p.profile_id"
        " and spell.campaign_id = %(campaign_id)s and spell.exited_on is null"
    ).format(people=people, window=window)


def predicate_sql(campaign: Campaign, people: sql.Composable) -> sql.Composed:
    """Profile ids matching a `sql` trigger's predicate (the campaigns file is trusted config)."""
    return sql.SQL("select p.profile_id from ({people}) p where ({predicate})").format(
        people=people, predicate=sql.SQL(campaign.trigger.predicate)
    )


CANDIDATE_SQL = """
select a.*,
    exists (
        select 1 from activation.erased_identifiers e
        cross join lateral (values ('profile_id', a.profile_id), ('email', a.email),
            ('user_id', a.user_id), ('crm_id', a.crm_id), ('phone', a.phone)) as mine (t, v)
        where e.identifier_type = mine.t
          and e.identifier_digest = encode(sha256(convert_to(mine.v, 'UTF8')), 'hex')
    ) as is_erased,
    (select max(x.decided_for) from activation.campaign_decisions x
      where x.campaign_id = %(campaign_id)s and x.profile_id = a.profile_id
        and x.decision in ('send', 'held', 'holdout')) as last_entry_at,
    assignment.arm as stored_arm,
    assignment.variant as stored_variant,
    global_control.arm as stored_global_arm,
    (select count(*) from activation.campaign_sends s
      where s.profile_id = a.profile_id and s.marketing
        and s.status in ('pending', 'sending', 'sent')
        and s.decided_for > %(as_of)s - make_interval(days => %(cap_days)s)
        and s.decided_for <= %(as_of)s) as recent_marketing_messages,
    (select min(s.campaign_id) from activation.campaign_sends s
      where s.profile_id = a.profile_id and s.marketing
        and s.status in ('pending', 'sending', 'sent')
        and cast(timezone('UTC', s.decided_for) as date)
            = cast(timezone('UTC', cast(%(as_of)s as timestamptz)) as date)) as todays_campaign
from ({trigger}) a
left join activation.campaign_assignments assignment
    on assignment.campaign_id = %(campaign_id)s and assignment.profile_id = a.profile_id
left join activation.campaign_assignments global_control
    on global_control.campaign_id = %(global_scope)s and global_control.profile_id = a.profile_id
where not exists (
    select 1 from activation.campaign_decisions done
    where done.campaign_id = %(campaign_id)s and done.profile_id = a.profile_id
      and done.trigger_window = a.trigger_window
)
order by a.profile_id
"""


def query_params(campaign: Campaign, policy: Policy, as_of: datetime) -> dict[str, Any]:
    trigger = campaign.trigger
    return {
        "as_of": as_of,
        "campaign_id": campaign.campaign_id,
        "global_scope": GLOBAL_CONTROL,
        "cap_days": policy.frequency_cap.per_days if policy.frequency_cap else 1,
        "stage": trigger.stage,
        "days": trigger.days,
        "within_days": trigger.within_days,
        "steps": list(trigger.steps),
        "without": list(trigger.without),
        "after_hours": trigger.after_hours,
    }


SPELL_UPDATES = (
    # people who left the audience: close their spell
    "update activation.campaign_audience_spells s set exited_on = %(today)s"
    " where s.campaign_id = %(campaign_id)s and s.exited_on is null"
    " and s.last_seen_on < %(today)s"
    " and not exists (select 1 from audience_now n where n.profile_id = s.profile_id)",
    # people still in it
    "update activation.campaign_audience_spells s set last_seen_on = %(today)s"
    " from audience_now n where n.profile_id = s.profile_id"
    " and s.campaign_id = %(campaign_id)s and s.exited_on is null and s.last_seen_on < %(today)s",
    # people who (re-)entered it: a new spell, i.e. a new trigger window
    "insert into activation.campaign_audience_spells"
    " (campaign_id, profile_id, entered_on, last_seen_on)"
    " select %(campaign_id)s, n.profile_id, %(today)s, %(today)s from audience_now n"
    " where not exists (select 1 from activation.campaign_audience_spells s"
    "   where s.campaign_id = %(campaign_id)s and s.profile_id = n.profile_id"
    "   and (s.exited_on is null or s.entered_on = %(today)s))",
)


def update_audience_spells(
    conn: psycopg.Connection, campaign: Campaign, people: sql.Composable, as_of: datetime
) -> None:
    """Open spells for new members of a `sql` audience, close those of people who left it."""
    params = {
        "as_of": as_of,
        "campaign_id": campaign.campaign_id,
        "today": as_of.astimezone(UTC).date(),
    }
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("create temporary table audience_now on commit drop as {members}").format(
                    members=predicate_sql(campaign, people)
                ),
                params,
            )
            conn.execute("analyze audience_now")
    except psycopg.Error as error:
        raise CampaignConfigError(f"{campaign.origin}.trigger.sql: {error}".strip()) from None
    for statement in SPELL_UPDATES:
        conn.execute(statement, params)
    conn.execute("drop table audience_now")


def fetch_candidates(
    conn: psycopg.Connection,
    campaign: Campaign,
    policy: Policy,
    as_of: datetime,
    people: sql.Composable,
) -> list[dict[str, Any]]:
    """Undecided audience members of the campaign, with the facts decisions need (`people`:
    snapshot_people's relation of this run)."""
    if campaign.trigger.kind in SPELL_TRIGGERS:
        update_audience_spells(conn, campaign, people, as_of)
    query = sql.SQL(CANDIDATE_SQL).format(trigger=trigger_sql(campaign, people))
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, query_params(campaign, policy, as_of)).fetchall()
    except psycopg.Error as error:
        raise CampaignConfigError(
            f"{campaign.origin}.trigger: audience query failed: {error}".strip()
        ) from None
