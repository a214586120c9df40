"""Who gets what on a hand-made warehouse: suppression reasons, triggers, entry limits, holdouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeyflow.campaigns import GLOBAL_CONTROL, CampaignConfigError
from journeyflow.decisions import in_share
from journeyflow.erasure_identifiers import digest
from tests.integration.activation_world import AS_OF, campaign, config, person

pytestmark = pytest.mark.integration


def profile_where(prefix: str, *, global_control: bool = False, holdout: bool = False) -> str:
    """The first id `prefix_<n>` whose hash puts it (or not) in the 10 % control groups."""
    for n in range(10_000):
        pid = f"{prefix}_{n}"
        if (
            in_share(GLOBAL_CONTROL, pid, 10) == global_control
            and in_share("nudge", pid, 10) == holdout
        ):
            return pid
    raise AssertionError("no such profile id")


def test_each_suppression_rule_holds_someone_back_with_the_right_reason(activation_world):
    world = activation_world
    ok, night, capped, both = (profile_where(p) for p in ("p_ok", "p_night", "p_capped", "p_both"))
    in_global, in_holdout = (
        profile_where("p_gc", global_control=True),
        profile_where("p_ho", holdout=True),
    )
    world.add_people(
        person(ok),
        person(night, country="JP", time_zone="Asia/Tokyo"),  # 12:00 UTC = 21:00 in Tokyo
        person(capped),
        person(both, order_count=5),
        person(in_global),
        person(in_holdout),
        person("p_erased_profile"),
        person("p_erased_email", email="gone@example.com"),
        person("p_no_email", email=None),
        person("p_bounced", undeliverable_reason="bounced"),
        person("p_dropped", undeliverable_reason="dropped"),
        person("p_unsubscribed", unsubscribed_at=AS_OF - timedelta(days=40)),
        person("p_spam", spam_reported_at=AS_OF - timedelta(days=3)),
        person("p_no_consent", email_consent=False),
        person("p_open_case", has_open_support_case=True, open_support_cases=1),
        person("p_entered_before"),
    )
    world.conn.execute(
        "insert into activation.erased_identifiers (identifier_type, identifier_digest)"
        " values ('profile_id', %s), ('email', %s)",
        (digest("p_erased_profile"), digest("gone@example.com")),
    )
    # history: two marketing messages in the last 7 days; an entry of the `once` campaign
    for day in (2, 5):
        world.conn.execute(
            "insert into activation.campaign_sends (send_id, campaign_id, profile_id,"
            " trigger_window, email, template_id, status, run_id, marketing, decided_for)"
            " values (%s, 'older', %s, %s, 'x@example.com', 'd-old', 'sent', 'run-0', true, %s)",
            (f"old-{day}", capped, AS_OF.date() - timedelta(days=day), AS_OF - timedelta(days=day)),
        )
    world.conn.execute(
        "insert into activation.campaign_decisions (campaign_id, profile_id, trigger_window,"
        " decision, reason, arm, run_id, decided_for) values ('nudge', 'p_entered_before',"
        " '2026-01-01', 'send', 'eligible', 'treatment', 'run-0', '2026-01-02')"
    )
    campaigns = config(
        campaign("nudge", holdout_percent=10, entry_limit="once"),
        campaign("upsell", trigger={"sql": "order_count >= 3"}, priority=200),
        global_control_percent=10,
        frequency_cap={"max_messages": 2, "per_days": 7},
        quiet_hours={"start": "21:00", "end": "08:00"},
    )
    world.run(campaigns)

    assert world.decisions() == {
        ("nudge", ok): ("send", "eligible"),
        ("nudge", night): ("held", "quiet_hours"),
        ("nudge", capped): ("suppressed", "frequency_cap_2_per_7_days"),
        ("nudge", both): ("send", "eligible"),
        ("upsell", both): ("suppressed", "priority:nudge"),
        ("nudge", in_global): ("holdout", "global_control"),
        ("nudge", in_holdout): ("holdout", "campaign_holdout"),
        ("nudge", "p_erased_profile"): ("suppressed", "erased"),
        ("nudge", "p_erased_email"): ("suppressed", "erased"),
        ("nudge", "p_no_email"): ("suppressed", "no_email"),
        ("nudge", "p_bounced"): ("suppressed", "email_bounced"),
        ("nudge", "p_dropped"): ("suppressed", "email_dropped"),
        ("nudge", "p_unsubscribed"): ("suppressed", "email_unsubscribed"),
        ("nudge", "p_spam"): ("suppressed", "email_spam_reported"),
        ("nudge", "p_no_consent"): ("suppressed", "no_marketing_consent"),
        ("nudge", "p_open_case"): ("suppressed", "open_support_case"),
        ("nudge", "p_entered_before"): ("suppressed", "entry_limit_once"),
    }
    recipients = {email: args for email, args in world.sink.messages()}
    assert set(recipients) == {f"{ok}@example.com", f"{night}@example.com", f"{both}@example.com"}
    (request,) = world.sink.requests
    scheduled = {p["to"][0]["email"]: p.get("send_at") for p in request["body"]["personalizations"]}
    tokyo_8am = datetime(2026, 11, 3, 8, 0, tzinfo=UTC) - timedelta(hours=9)
    assert scheduled == {
        f"{ok}@example.com": None,
        f"{both}@example.com": None,
        f"{night}@example.com": int(tokyo_8am.timestamp()),
    }
    arms = {
        (row["campaign_id"], row["profile_id"]): row["arm"]
        for row in world.rows(
            "select * from activation.campaign_decisions where arm is not null and run_id = 'run-1'"
        )
    }
    assert arms == {
        ("nudge", ok): "treatment",
        ("nudge", night): "treatment",
        ("nudge", capped): "treatment",  # assigned before the cap: stays in the treatment arm
        ("nudge", both): "treatment",
        ("upsell", both): "treatment",  # lost on priority, after assignment
        ("nudge", in_global): "global_control",
        ("nudge", in_holdout): "holdout",
    }
    stored = world.rows(
        "select campaign_id, count(*) as n from activation.campaign_assignments"
        " group by 1 order by 1"
    )
    assert stored == [
        {"campaign_id": GLOBAL_CONTROL, "n": 6},
        {"campaign_id": "nudge", "n": 5},
        {"campaign_id": "upsell", "n": 1},
    ]


def test_abandoned_step_trigger(activation_world):
    world = activation_world
    people = ["p_abandoned", "p_ordered", "p_too_recent", "p_too_old", "p_never"]
    world.add_people(*(person(p, current_stage="consideration") for p in people))
    world.add_touchpoint("p_abandoned", "checkout_started", AS_OF - timedelta(hours=6))
    world.add_touchpoint("p_ordered", "checkout_started", AS_OF - timedelta(hours=6))
    world.add_touchpoint("p_ordered", "order_completed", AS_OF - timedelta(hours=1))
    world.add_touchpoint("p_too_recent", "checkout_started", AS_OF - timedelta(hours=2))
    world.add_touchpoint("p_too_old", "checkout_started", AS_OF - timedelta(days=5))
    world.add_touchpoint("p_never", "product_view", AS_OF - timedelta(hours=6))
    trigger = {
        "abandoned": {
            "steps": ["checkout_started"],
            "without": ["order_completed"],
            "after_hours": 4,
            "within_days": 3,
        }
    }
    world.run(config(campaign("rescue", trigger=trigger)))
    assert world.decisions() == {("rescue", "p_abandoned"): ("send", "eligible")}
    (window,) = world.rows("select trigger_window from activation.campaign_decisions")
    assert window["trigger_window"] == (AS_OF - timedelta(hours=6)).date()


def test_entered_stage_trigger(activation_world):
    world = activation_world
    world.add_people(person("p_new", current_stage="decision"), person("p_old"))
    for pid, days_ago in (("p_new", 2), ("p_old", 10)):
        world.conn.execute(
            "insert into marts.fct_customer_stage_history (stage_spell_id, profile_id, stage,"
            " entered_at, is_current) values (%s, %s, 'decision', %s, true)",
            (f"{pid}|decision", pid, AS_OF - timedelta(days=days_ago)),
        )
    trigger = {"entered_stage": {"stage": "decision", "within_days": 7}}
    world.run(config(campaign("welcome", trigger=trigger)))
    assert world.decisions() == {("welcome", "p_new"): ("send", "eligible")}


def _set_orders(world, profile_id: str, orders: int) -> None:
    world.conn.execute(
        "update marts.dim_customers set order_count = %s where profile_id = %s",
        (orders, profile_id),
    )


@pytest.mark.parametrize(
    ("entry_limit", "expected_messages"),
    [
        # in on days 0-2, out on day 3, in again on day 4 (day 5 too)
        ("after_exit", {"day0": 1, "day4": 1}),
        ("once", {"day0": 1}),
        ({"every_days": 2}, {"day0": 1, "day2": 1, "day4": 1}),
    ],
)
def test_sql_trigger_and_entry_limits(activation_world, entry_limit, expected_messages):
    world = activation_world
    world.add_people(person("p_vip", order_count=3))
    campaigns = config(
        campaign("vip", trigger={"sql": "order_count >= 3"}, entry_limit=entry_limit)
    )
    sent_on = {}
    for day in range(6):
        _set_orders(world, "p_vip", 1 if day == 3 else 3)
        before = len(world.sink.messages())
        world.run(campaigns, as_of=AS_OF + timedelta(days=day), run_id=f"day{day}")
        if len(world.sink.messages()) > before:
            sent_on[f"day{day}"] = len(world.sink.messages()) - before
    assert sent_on == expected_messages
    spells = world.rows(
        "select entered_on, exited_on from activation.campaign_audience_spells order by 1"
    )
    assert [(s["entered_on"], s["exited_on"]) for s in spells] == [
        (AS_OF.date(), (AS_OF + timedelta(days=3)).date()),
        ((AS_OF + timedelta(days=4)).date(), None),
    ]


def test_a_run_plans_with_statistics_of_what_earlier_runs_wrote(activation_world):
    """The audience queries look candidates up in tables earlier runs filled; the planner
    must know their size (the warehouse may run without autovacuum)."""
    world = activation_world
    world.add_people(*(person(f"p_{i:03d}", order_count=3) for i in range(120)))
    campaigns = config(
        campaign("vip", trigger={"sql": "order_count >= 3"}, entry_limit={"every_days": 1})
    )

    def planned_rows(table: str) -> float:
        return world.rows(
            "select reltuples from pg_class where oid = %s::regclass", (f"activation.{table}",)
        )[0]["reltuples"]

    world.run(campaigns, delivery=None)
    # empty when the first run began: left unanalyzed (-1), not planned as holding nothing
    assert planned_rows("campaign_audience_spells") == -1
    world.run(campaigns, as_of=AS_OF + timedelta(days=1), run_id="run-2", delivery=None)
    # as the second run found them: what the first run wrote
    assert planned_rows("campaign_audience_spells") == 120
    assert planned_rows("campaign_decisions") == 120
    assert planned_rows("campaign_sends") == 120


def test_holdout_share_within_two_points_on_10000_profiles_and_never_rerolled(
    activation_world,
):
    world = activation_world
    world.add_people(*(person(f"p_{i:05d}") for i in range(10_000)))
    ab = campaign("ab", trigger={"sql": "true"}, entry_limit={"every_days": 1}, holdout_percent=10)
    halves = {
        "a": {"template_id": "d-a", "percent": 50},
        "b": {"template_id": "d-b", "percent": 50},
    }
    ab["ab"]["content"] = {"variants": halves}
    world.run(config(ab, global_control_percent=5), delivery=None)

    def arms(day):
        rows = world.rows(
            "select profile_id, arm, variant from activation.campaign_decisions"
            " where trigger_window = %s",
            (day,),
        )
        return {row["profile_id"]: (row["arm"], row["variant"]) for row in rows}

    first = arms(AS_OF.date())
    assert len(first) == 10_000
    shares = {
        name: sum(1 for arm, _ in first.values() if arm == name) / 10_000
        for name in ("global_control", "holdout")
    }
    assert abs(shares["global_control"] - 0.05) <= 0.02, shares
    # the campaign holdout is 10 % of the people outside the global control group
    holdout_share = shares["holdout"] / (1 - shares["global_control"])
    assert abs(holdout_share - 0.10) <= 0.02, shares
    variants = [variant for arm, variant in first.values() if arm == "treatment"]
    assert abs(variants.count("a") / len(variants) - 0.5) <= 0.02

    # next day, with other shares declared: stored assignments are reused, never re-rolled
    ab["ab"]["holdout_percent"] = 40
    world.run(config(ab, global_control_percent=30), as_of=AS_OF + timedelta(days=1), delivery=None)
    assert arms((AS_OF + timedelta(days=1)).date()) == first
    global_control = sum(1 for arm, _ in first.values() if arm == "global_control")
    stored = world.rows("select count(*) as n from activation.campaign_assignments")
    # a global assignment per person, a campaign assignment for those outside global control
    assert stored == [{"n": 10_000 + 10_000 - global_control}]


def test_a_broken_sql_predicate_names_the_campaign_and_writes_nothing(activation_world):
    world = activation_world
    world.add_people(person("p_alice"))
    campaigns = config(campaign("nudge"), campaign("broken", trigger={"sql": "no_such_column > 1"}))
    with pytest.raises(CampaignConfigError) as caught:
        world.run(campaigns)
    assert "test-campaigns.yml: campaigns.broken.trigger.sql:" in str(caught.value)
    assert "no_such_column" in str(caught.value)
    assert world.rows("select * from activation.campaign_decisions") == []
    assert world.sink.requests == []


def test_template_data_naming_an_unknown_column_is_a_config_error(activation_world):
    world = activation_world
    world.add_people(person("p_alice"))
    broken = campaign("nudge")
    broken["nudge"]["content"]["template_data"] = {"name": "nickname"}
    with pytest.raises(
        CampaignConfigError, match=r"campaigns.nudge.content.template_data: unknown"
    ):
        world.run(config(broken))
    assert world.rows("select * from activation.campaign_sends") == []


PREVIOUS_RELEASE_DDL = """
drop schema activation cascade;
create schema activation;
create table activation.campaign_decisions (
    campaign_id text not null, profile_id text not null, trigger_window date not null,
    decision text not null check (decision in ('send', 'suppressed', 'holdout')),
    reason text not null, run_id text not null, decided_at timestamptz not null default now(),
    primary key (campaign_id, profile_id, trigger_window));
create table activation.campaign_sends (
    send_id text primary key, campaign_id text not null, profile_id text not null,
    trigger_window date not null, email text not null, template_id text not null,
    status text not null check (status in ('pending', 'sending', 'sent', 'failed')),
    attempts integer not null default 0, sg_message_id text, error text, run_id text not null,
    created_at timestamptz not null default now(), sent_at timestamptz,
    unique (campaign_id, profile_id, trigger_window));
insert into activation.campaign_sends (send_id, campaign_id, profile_id, trigger_window, email,
    template_id, status, run_id) values ('old', 'nudge', 'p_old', '2026-01-01', 'o@example.com',
    'd-nudge', 'sent', 'run-0');
"""


def test_activation_tables_of_the_previous_release_are_upgraded_in_place(activation_world):
    from journeyflow.activation import ensure_activation_schema

    world = activation_world
    world.conn.execute(PREVIOUS_RELEASE_DDL)
    ensure_activation_schema(world.conn)
    ensure_activation_schema(world.conn)  # idempotent
    world.add_people(person("p_alice"), person("p_night", time_zone="Asia/Tokyo"))
    world.run(config(campaign("nudge"), quiet_hours={"start": "21:00", "end": "08:00"}))
    assert world.statuses() == {"p_old": "sent", "p_alice": "sent", "p_night": "sent"}
    assert world.decisions()[("nudge", "p_night")] == ("held", "quiet_hours")
