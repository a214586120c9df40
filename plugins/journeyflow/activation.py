"""Campaign activation: decide who gets a message, write the outbox, send through SendGrid once.

Exactly once, step by step:
- a run decides every audience member once per trigger window (the first decision sticks) and
  writes the outbox row, keyed by send_id = hash(campaign, profile, trigger window), in the
  same transaction;
- a batch of pending rows is claimed (`sending`, with a deterministic batch id that travels as
  a SendGrid custom arg) and committed before the API call, then marked `sent` or `failed`;
- rows left in `sending` (the process died between the call and the commit) are reconciled
  before anything else: looked up by batch id in SendGrid's Email Activity, they become `sent`
  when SendGrid has them and `pending` again (safe to send) when it does not. Rows claimed too
  recently for the activity feed to be trusted, or when the feed is unavailable, stay in doubt
  and are never re-sent blindly.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from journeyflow import audience, sendgrid_api
from journeyflow.campaigns import Campaign, CampaignConfig, CampaignConfigError
from journeyflow.decisions import Candidate, decide_all

log = logging.getLogger(__name__)

LOCK_KEY = 7_100_417  # advisory lock: one activation run at a time per warehouse
DEFAULT_RECONCILE_GRACE = timedelta(minutes=15)


@dataclass
class SendReport:
    """What one run did for one campaign."""

    campaign_id: str
    candidates: int = 0  # audience members without a decision for their trigger window yet
    decided_send: int = 0
    decided_held: int = 0
    suppressed: int = 0
    holdout: int = 0
    sent: int = 0
    failed: int = 0
    reconciled_sent: int = 0
    requeued: int = 0
    in_doubt: int = 0
    expired: int = 0


@dataclass
class Delivery:
    """How to talk to SendGrid in this run."""

    client: Any
    from_email: str
    sandbox: bool = False
    batch_size: int = sendgrid_api.MAX_PERSONALIZATIONS
    max_attempts: int = sendgrid_api.MAX_ATTEMPTS
    reconcile_grace: timedelta = DEFAULT_RECONCILE_GRACE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def ensure_activation_schema(conn: psycopg.Connection) -> None:
    """Create (or upgrade) the activation schema."""
    ddl = resources.files("journeyflow").joinpath("sql/activation.sql").read_text()
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(ddl)


def send_id_for(campaign_id: str, profile_id: str, trigger_window: Any) -> str:
    """Stable idempotency key: one message per campaign, profile and trigger window."""
    return hashlib.sha256(f"{campaign_id}|{profile_id}|{trigger_window}".encode()).hexdigest()[:24]


# --- deciding --------------------------------------------------------------------------------


def register_campaigns(conn: psycopg.Connection, config: CampaignConfig) -> None:
    """Keep activation.campaigns equal to the declared campaigns (for the reporting layer)."""
    for campaign in config.campaigns:
        definition = asdict(campaign)
        definition.pop("origin")
        conn.execute(
            "insert into activation.campaigns (campaign_id, description, priority, marketing,"
            " trigger_kind, holdout_percent, goal_touchpoint_type, attribution_days, definition)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (campaign_id) do update set"
            " description = excluded.description, priority = excluded.priority,"
            " marketing = excluded.marketing, trigger_kind = excluded.trigger_kind,"
            " holdout_percent = excluded.holdout_percent,"
            " goal_touchpoint_type = excluded.goal_touchpoint_type,"
            " attribution_days = excluded.attribution_days, definition = excluded.definition",
            (
                campaign.campaign_id,
                campaign.description,
                campaign.priority,
                campaign.marketing,
                campaign.trigger.kind,
                campaign.holdout_percent,
                campaign.goal.touchpoint,
                campaign.goal.within_days,
                Jsonb(definition),
            ),
        )


def template_data_for(campaign: Campaign, person: dict[str, Any]) -> dict[str, Any]:
    """Template data from profile columns, as declared in content.template_data.

    The rolling activity columns no campaign uses are not in `person` (see
    audience.snapshot_people), but a campaign may use them: they are listed as available.
    """
    missing = [column for _, column in campaign.template_data if column not in person]
    if missing:
        available = sorted(set(person) | set(audience.ROLLING_ACTIVITY_COLUMNS))
        raise CampaignConfigError(
            f"{campaign.origin}.content.template_data: unknown profile column {missing[0]!r}"
            f" (available: {available})"
        )
    return {key: person[column] for key, column in campaign.template_data}


def _template_for(campaign: Campaign, variant: str) -> str:
    return next(v.template_id for v in campaign.variants if v.name == variant)


def _write_decisions(
    conn: psycopg.Connection, candidates: list[Candidate], as_of: datetime, run_id: str
) -> None:
    decisions, assignments, sends = [], [], []
    for c in candidates:
        key = (c.campaign.campaign_id, c.profile_id, c.trigger_window)
        messaged = c.decision in ("send", "held")
        send_id = send_id_for(*key) if messaged else None
        decisions.append((*key, c.decision, c.reason, c.arm, c.variant, send_id, run_id, as_of))
        assignments += [
            (scope, c.profile_id, arm, variant, run_id) for scope, arm, variant in c.new_assignments
        ]
        if messaged:
            sends.append(
                (
                    send_id,
                    *key,
                    c.person["email"],
                    _template_for(c.campaign, c.variant),
                    c.variant,
                    Jsonb(sendgrid_api.json_safe(template_data_for(c.campaign, c.person))),
                    c.campaign.marketing,
                    as_of,
                    c.send_at,
                    run_id,
                    "pending",
                )
            )
    _insert_new(conn, "campaign_decisions", DECISION_COLUMNS, decisions)
    _insert_new(conn, "campaign_assignments", ASSIGNMENT_COLUMNS, assignments)
    _insert_new(conn, "campaign_sends", SEND_COLUMNS, sends)


DECISION_COLUMNS = (
    "campaign_id", "profile_id", "trigger_window", "decision", "reason", "arm", "variant",
    "send_id", "run_id", "decided_for",
)  # fmt: skip
ASSIGNMENT_COLUMNS = ("campaign_id", "profile_id", "arm", "variant", "run_id")
SEND_COLUMNS = (
    "send_id", "campaign_id", "profile_id", "trigger_window", "email", "template_id", "variant",
    "template_data", "marketing", "decided_for", "send_at", "run_id", "status",
)  # fmt: skip


def _insert_new(
    conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: list[tuple]
) -> None:
    """Bulk insert (COPY into a scratch table, then insert); existing keys are left alone."""
    if not rows:
        return
    names = ", ".join(columns)
    conn.execute(
        f"create temporary table incoming (like activation.{table} including defaults)"
        " on commit drop"
    )
    with conn.cursor().copy(f"copy incoming ({names}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(
        f"insert into activation.{table} ({names}) select {names} from incoming"
        " on conflict do nothing"
    )
    conn.execute("drop table incoming")


ACTIVATION_TABLES = (
    "campaign_decisions",
    "campaign_assignments",
    "campaign_audience_spells",
    "campaign_sends",
)


def refresh_statistics(conn: psycopg.Connection) -> None:
    """Analyze the activation tables that earlier runs wrote to.

    The audience queries look every candidate up in them; with statistics of an emptier
    table the planner loops over one for each row of another (67 s instead of 0.1 s for
    36,000 audience spells). An empty table is left unanalyzed: statistics saying "empty"
    make the planner scan it once per row of a statement that fills it (the first run's
    new audience spells: 16 s), where a never-analyzed table is assumed to hold a few pages.
    """
    for table in ACTIVATION_TABLES:
        if conn.execute(f"select exists (select 1 from activation.{table})").fetchone()[0]:
            conn.execute(f"analyze activation.{table}")


def record_decisions(
    conn: psycopg.Connection, config: CampaignConfig, as_of: datetime, run_id: str
) -> dict[str, SendReport]:
    """Decide every campaign's new audience members together and write decisions and outbox."""
    reports = {c.campaign_id: SendReport(c.campaign_id) for c in config.campaigns}
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        refresh_statistics(conn)
        register_campaigns(conn, config)
        everyone = audience.snapshot_people(conn, as_of, config.campaigns)
        candidates = []
        for campaign in config.campaigns:
            people = audience.fetch_candidates(conn, campaign, config.policy, as_of, everyone)
            reports[campaign.campaign_id].candidates = len(people)
            candidates += [Candidate(campaign, p, p["trigger_window"]) for p in people]
        decide_all(candidates, config.policy, as_of)
        _write_decisions(conn, candidates, as_of, run_id)
    for candidate in candidates:
        report = reports[candidate.campaign.campaign_id]
        if candidate.decision == "send":
            report.decided_send += 1
        elif candidate.decision == "held":
            report.decided_held += 1
        elif candidate.decision == "holdout":
            report.holdout += 1
        else:
            report.suppressed += 1
    return reports


# --- delivering ------------------------------------------------------------------------------


def expire_stale(
    conn: psycopg.Connection, campaign: Campaign, as_of: datetime, max_delay_hours: int
) -> int:
    """Pending messages decided too long before this run are not sent any more."""
    with conn.transaction():
        cursor = conn.execute(
            "update activation.campaign_sends set status = 'expired',"
            " error = 'not sent within ' || %s || ' hours of the decision'"
            " where campaign_id = %s and status = 'pending'"
            " and decided_for < %s - make_interval(hours => %s)",
            (max_delay_hours, campaign.campaign_id, as_of, max_delay_hours),
        )
        return cursor.rowcount


def _mark(
    conn: psycopg.Connection,
    send_ids: list[str],
    status: str,
    message_id: str | None = None,
    error: str | None = None,
) -> None:
    with conn.transaction():
        conn.execute(
            "update activation.campaign_sends set status = %s, sg_message_id = %s, error = %s,"
            " sent_at = case when %s = 'sent' then now() end where send_id = any(%s)",
            (status, message_id, error, status, send_ids),
        )


def reconcile_in_doubt(
    conn: psycopg.Connection, campaign: Campaign, delivery: Delivery, report: SendReport
) -> None:
    """Settle rows an earlier attempt left in `sending`, using SendGrid's Email Activity."""
    with conn.transaction():
        batches = conn.execute(
            "select batch_id, array_agg(send_id order by send_id), max(claimed_at)"
            " from activation.campaign_sends where campaign_id = %s and status = 'sending'"
            " group by batch_id order by batch_id",
            (campaign.campaign_id,),
        ).fetchall()
    now = delivery.clock()
    for batch_id, send_ids, claimed_at in batches:
        if claimed_at is None or claimed_at > now - delivery.reconcile_grace:
            report.in_doubt += len(send_ids)
            continue
        try:
            found = sendgrid_api.find_batch(delivery.client, batch_id, delivery.sleep)
        except sendgrid_api.ActivityUnavailable as error:
            log.warning(
                "%s: %d messages stay in doubt: %s", campaign.campaign_id, len(send_ids), error
            )
            report.in_doubt += len(send_ids)
            continue
        if found:
            _mark(conn, send_ids, "sent", found[0].get("msg_id"))
            report.reconciled_sent += len(send_ids)
        else:
            with conn.transaction():
                conn.execute(
                    "update activation.campaign_sends set status = 'pending', batch_id = null"
                    " where send_id = any(%s) and status = 'sending'",
                    (send_ids,),
                )
            report.requeued += len(send_ids)


def claim_batch(
    conn: psycopg.Connection, campaign: Campaign, delivery: Delivery
) -> list[dict[str, Any]]:
    """Move the next batch of pending rows (one template) to `sending` and commit."""
    now = delivery.clock()
    horizon = now + timedelta(hours=sendgrid_api.MAX_SCHEDULE_AHEAD_HOURS)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select send_id, campaign_id, profile_id, email, template_id, variant,"
            " template_data, send_at, attempts from activation.campaign_sends"
            " where campaign_id = %s and status = 'pending'"
            " and (send_at is null or send_at <= %s)"
            " order by template_id, send_id limit %s for update skip locked",
            (campaign.campaign_id, horizon, delivery.batch_size),
        ).fetchall()
        rows = [row for row in rows if rows and row["template_id"] == rows[0]["template_id"]]
        if not rows:
            return []
        send_ids = [row["send_id"] for row in rows]
        attempt = max(row["attempts"] for row in rows) + 1
        batch_id = sendgrid_api.batch_id_for(send_ids, attempt)
        cur.execute(
            "update activation.campaign_sends set status = 'sending', attempts = attempts + 1,"
            " batch_id = %s, claimed_at = %s where send_id = any(%s)",
            (batch_id, now, send_ids),
        )
    for row in rows:
        row["batch_id"] = batch_id
    return rows


def deliver(
    conn: psycopg.Connection,
    campaign: Campaign,
    delivery: Delivery,
    report: SendReport,
) -> None:
    """Send the campaign's pending outbox rows in batches; record sent or failed."""
    from python_http_client.exceptions import HTTPError

    from_email = campaign.from_email or delivery.from_email
    while rows := claim_batch(conn, campaign, delivery):
        send_ids = [row["send_id"] for row in rows]
        body = sendgrid_api.mail_body(
            rows, from_email, delivery.sandbox, rows[0]["batch_id"], delivery.clock()
        )
        try:
            response = sendgrid_api.post_mail(
                delivery.client, body, delivery.sleep, delivery.max_attempts
            )
        except HTTPError as error:
            _mark(conn, send_ids, "failed", error=sendgrid_api.error_text(error))
            report.failed += len(rows)
            log.error("%s: %d messages failed: %s", campaign.campaign_id, len(rows), error)
            continue
        _mark(conn, send_ids, "sent", response.headers.get("X-Message-Id"))
        report.sent += len(rows)


def run_campaigns(
    conn: psycopg.Connection,
    config: CampaignConfig,
    as_of: datetime,
    run_id: str,
    delivery: Delivery | None,
) -> list[SendReport]:
    """Decide, then (unless dry run) reconcile, expire and deliver, campaign by campaign.

    Needs an autocommit connection: each claim must be committed before its API call.
    """
    if not conn.autocommit:
        raise ValueError("run_campaigns needs an autocommit connection")
    reports = record_decisions(conn, config, as_of, run_id)
    for campaign in config.campaigns:
        report = reports[campaign.campaign_id]
        if delivery is not None:
            reconcile_in_doubt(conn, campaign, delivery, report)
            report.expired = expire_stale(conn, campaign, as_of, config.policy.max_send_delay_hours)
            deliver(conn, campaign, delivery, report)
        log.info("%s: %s", campaign.campaign_id, report)
        if report.in_doubt:
            log.warning(
                "%s: %d messages in doubt (status sending): a later run settles them against"
                " SendGrid's Email Activity",
                campaign.campaign_id,
                report.in_doubt,
            )
    return list(reports.values())
