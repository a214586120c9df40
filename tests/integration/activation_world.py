"""A hand-made warehouse for activation tests: marts-shaped tables, people, a SendGrid sink."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from journeyflow import activation, sendgrid_api
from journeyflow.campaigns import CampaignConfig, parse_campaign_config
from journeyflow.warehouse import ensure_database, with_database

API_KEY = "SG.activation-test-key-never-logged"
FROM_EMAIL = "journeys@shop.example.com"
AS_OF = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # 12:00 UTC: daytime in Europe and America

# Same columns as the dbt marts the audience queries read (types as dbt builds them).
MARTS_DDL = """
create schema marts;
create table marts.dim_customers (
    profile_id text primary key, email text, user_id text, crm_id text, phone text,
    first_seen_at timestamptz, last_seen_at timestamptz, channels_used text,
    touchpoint_count bigint not null default 0, order_count bigint not null default 0,
    revenue numeric not null default 0, open_support_cases bigint not null default 0,
    has_open_support_case boolean not null default false,
    email_consent boolean not null default true, email_status text not null default 'ok',
    current_stage text, current_stage_entered_at timestamptz,
    is_stalled boolean not null default false
);
create table marts.dim_customer_contactability (
    profile_id text primary key, email text, first_name text, country text, time_zone text,
    unsubscribed_at timestamptz, spam_reported_at timestamptz, undeliverable_reason text,
    undeliverable_at timestamptz
);
create table marts.fct_touchpoints (
    touchpoint_id text primary key, profile_id text not null, source text, channel text,
    touchpoint_type text not null, occurred_at timestamptz not null, amount numeric,
    source_record_id text, campaign_id text, identifier_type text
);
create table marts.fct_customer_stage_history (
    stage_spell_id text primary key, profile_id text not null, stage text not null,
    stage_order integer, spell_number integer, entered_at timestamptz not null,
    exited_at timestamptz, entered_from text, exited_to text, hours_in_stage numeric,
    is_regression boolean, is_current boolean not null
);
"""

DIM_COLUMNS = (
    "profile_id", "email", "user_id", "crm_id", "phone", "order_count", "revenue",
    "has_open_support_case", "open_support_cases", "email_consent", "email_status",
    "current_stage", "current_stage_entered_at",
)  # fmt: skip
CONTACT_COLUMNS = (
    "profile_id", "email", "first_name", "country", "time_zone", "unsubscribed_at",
    "spam_reported_at", "undeliverable_reason", "undeliverable_at",
)  # fmt: skip


def campaign(
    campaign_id: str = "nudge", trigger: dict | None = None, **overrides: Any
) -> dict[str, Any]:
    """A campaign declaration (dict, as in the YAML file) with test defaults."""
    body = {
        "trigger": trigger or {"stalled_in_stage": {"stage": "consideration", "days": 3}},
        "content": {
            "template_id": f"d-{campaign_id}",
            "template_data": {"first_name": "first_name", "stage": "current_stage"},
        },
    }
    return {campaign_id: body | overrides}


def config(*campaigns: dict[str, Any], **policy: Any) -> CampaignConfig:
    merged: dict[str, Any] = {}
    for item in campaigns:
        merged |= item
    return parse_campaign_config({"policy": policy, "campaigns": merged}, "test-campaigns.yml")


def person(profile_id: str, **overrides: Any) -> dict[str, Any]:
    """A contactable person stalled in consideration for 5 days, living in Berlin."""
    return {
        "profile_id": profile_id,
        "email": f"{profile_id}@example.com",
        "first_name": profile_id.capitalize(),
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "email_consent": True,
        "current_stage": "consideration",
        "current_stage_entered_at": AS_OF - timedelta(days=5),
    } | overrides


@dataclass
class World:
    url: str
    conn: psycopg.Connection
    sink: Any
    sleeps: list[float] = field(default_factory=list)

    def add_people(self, *people: dict[str, Any]) -> None:
        """Insert people into dim_customers and dim_customer_contactability (COPY)."""
        with self.conn.cursor() as cur:
            for table, columns in (
                ("dim_customers", DIM_COLUMNS),
                ("dim_customer_contactability", CONTACT_COLUMNS),
            ):
                names = ", ".join(columns)
                with cur.copy(f"copy marts.{table} ({names}) from stdin") as copy:
                    for item in people:
                        defaults = {"order_count": 0, "revenue": 0, "open_support_cases": 0}
                        defaults |= {"has_open_support_case": False, "email_status": "ok"}
                        row = defaults | item
                        copy.write_row([row.get(column) for column in columns])

    def add_touchpoint(
        self, profile_id: str, touchpoint_type: str, occurred_at: datetime, amount=None
    ) -> None:
        self.conn.execute(
            "insert into marts.fct_touchpoints (touchpoint_id, profile_id, touchpoint_type,"
            " occurred_at, amount) values (%s, %s, %s, %s, %s)",
            (uuid.uuid4().hex, profile_id, touchpoint_type, occurred_at, amount),
        )

    def delivery(self, **overrides: Any) -> activation.Delivery:
        """Delivery through the real client to the sink; waits are recorded, not slept."""
        settings = {
            "client": sendgrid_api.make_client(API_KEY, self.sink.url),
            "from_email": FROM_EMAIL,
            "reconcile_grace": timedelta(0),
            "sleep": self.sleeps.append,
            "clock": lambda: AS_OF + timedelta(minutes=1),
        }
        return activation.Delivery(**(settings | overrides))

    def run(
        self,
        campaign_config: CampaignConfig,
        as_of: datetime = AS_OF,
        delivery: activation.Delivery | None | str = "default",
        run_id: str = "run-1",
    ) -> dict[str, activation.SendReport]:
        if delivery == "default":
            delivery = self.delivery()
        reports = activation.run_campaigns(self.conn, campaign_config, as_of, run_id, delivery)
        return {report.campaign_id: report for report in reports}

    def rows(self, query: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def decisions(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(campaign, profile) -> (decision, reason) of the latest trigger window."""
        return {
            (row["campaign_id"], row["profile_id"]): (row["decision"], row["reason"])
            for row in self.rows(
                "select * from activation.campaign_decisions order by trigger_window"
            )
        }

    def statuses(self) -> dict[str, str]:
        return {
            row["profile_id"]: row["status"]
            for row in self.rows("select profile_id, status from activation.campaign_sends")
        }


@contextmanager
def fresh_warehouse(server_url: str) -> Iterator[str]:
    """A new, uniquely named database with the marts tables and the activation schema."""
    name = f"journey_test_activation_{uuid.uuid4().hex[:8]}"
    url = with_database(server_url, name)
    ensure_database(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(MARTS_DDL)
            activation.ensure_activation_schema(conn)
        yield url
    finally:
        with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
