"""Decision rules, idempotency keys, SendGrid bodies and retry decisions of activation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from journeyflow.activation import send_id_for
from journeyflow.campaigns import parse_campaign_config
from journeyflow.decisions import (
    Candidate,
    bucket,
    decide_all,
    entry_limit_reason,
    in_share,
    personal_suppression,
    pick_variant,
    quiet_until,
)
from journeyflow.sendgrid_api import BATCH_ARG, batch_id_for, mail_body, retry_delay

AS_OF = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def make_config(campaigns: dict | None = None, **policy):
    campaigns = campaigns or {
        "nudge": {
            "trigger": {"stalled_in_stage": {"stage": "consideration", "days": 3}},
            "content": {"template_id": "d-1"},
        }
    }
    return parse_campaign_config({"policy": policy, "campaigns": campaigns}, "c.yml")


def campaign_body(priority=100, marketing=True, **extra):
    return {
        "trigger": {"sql": "true"},
        "content": {"template_id": "d-x"},
        "priority": priority,
        "marketing": marketing,
        **extra,
    }


PERSON = {
    "profile_id": "p_1",
    "email": "a@example.com",
    "email_consent": True,
    "has_open_support_case": False,
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"is_erased": True, "email": None}, "erased"),
        ({"email": None}, "no_email"),
        ({"undeliverable_reason": "bounced"}, "email_bounced"),
        ({"undeliverable_reason": "dropped", "email_consent": False}, "email_dropped"),
        ({"unsubscribed_at": AS_OF, "email_consent": False}, "email_unsubscribed"),
        ({"spam_reported_at": AS_OF}, "email_spam_reported"),
        ({"email_consent": False}, "no_marketing_consent"),
        ({"has_open_support_case": True}, "open_support_case"),
    ],
)
def test_first_suppression_reason_wins(changes, expected):
    (campaign,) = make_config().campaigns
    assert personal_suppression(campaign, PERSON | changes) == expected


def test_service_messages_skip_marketing_rules_but_not_deliverability():
    service = make_config({"receipt": campaign_body(marketing=False)}).campaigns[0]
    assert personal_suppression(service, PERSON | {"email_consent": False}) is None
    assert personal_suppression(service, PERSON | {"has_open_support_case": True}) is None
    assert personal_suppression(service, PERSON | {"undeliverable_reason": "bounced"}) == (
        "email_bounced"
    )


def test_entry_limits():
    def limited(limit):
        body = campaign_body(entry_limit=limit)
        return make_config({"c": body}).campaigns[0]

    before = AS_OF - timedelta(days=10)
    assert entry_limit_reason(limited("after_exit"), before, AS_OF) is None
    assert entry_limit_reason(limited("once"), before, AS_OF) == "entry_limit_once"
    assert entry_limit_reason(limited("once"), None, AS_OF) is None
    every_30 = limited({"every_days": 30})
    assert entry_limit_reason(every_30, before, AS_OF) == "entry_limit_every_30_days"
    assert entry_limit_reason(every_30, AS_OF - timedelta(days=31), AS_OF) is None


QUIET = make_config(quiet_hours={"start": "21:00", "end": "08:00"}).policy.quiet_hours


@pytest.mark.parametrize(
    ("as_of", "zone", "expected"),
    [
        # 12:00 UTC = 13:00 in Berlin: not quiet
        (datetime(2026, 11, 2, 12, 0, tzinfo=UTC), "Europe/Berlin", None),
        # 22:30 UTC = 23:30 in Berlin: held until 08:00 Berlin next day = 07:00 UTC
        (
            datetime(2026, 11, 2, 22, 30, tzinfo=UTC),
            "Europe/Berlin",
            datetime(2026, 11, 3, 7, 0, tzinfo=UTC),
        ),
        # 03:00 UTC = 22:00 in New York (EST, UTC-5): held until 08:00 EST = 13:00 UTC
        (
            datetime(2026, 11, 3, 3, 0, tzinfo=UTC),
            "America/New_York",
            datetime(2026, 11, 3, 13, 0, tzinfo=UTC),
        ),
        # 06:00 UTC = 07:00 in Berlin, after midnight: held until 08:00 the same day
        (
            datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
            "Europe/Berlin",
            datetime(2026, 11, 2, 7, 0, tzinfo=UTC),
        ),
        # the window ends at 08:00 sharp: 07:00 UTC = 08:00 Berlin is allowed
        (datetime(2026, 11, 2, 7, 0, tzinfo=UTC), "Europe/Berlin", None),
    ],
)
def test_quiet_hours_in_the_recipients_time_zone(as_of, zone, expected):
    assert quiet_until(as_of, zone, QUIET) == expected


def test_quiet_hours_within_one_day():
    lunch = make_config(quiet_hours={"start": "12:00", "end": "14:00"}).policy.quiet_hours
    assert quiet_until(AS_OF, "UTC", lunch) == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert quiet_until(AS_OF - timedelta(hours=1), "UTC", lunch) is None


def test_buckets_are_stable_uniform_and_independent_per_scope():
    assert bucket("nudge", "p_1") == bucket("nudge", "p_1")
    shares = [sum(in_share(scope, f"p_{i}", 10) for i in range(20_000)) for scope in "ab"]
    assert all(abs(share / 20_000 - 0.10) < 0.01 for share in shares)
    overlap = sum(
        in_share("a", f"p_{i}", 10) and in_share("b", f"p_{i}", 10) for i in range(20_000)
    )
    assert abs(overlap / 20_000 - 0.01) < 0.005  # independent: 10 % of 10 %


def test_variants_follow_split_percentages():
    body = campaign_body()
    body["content"] = {
        "variants": {
            "a": {"template_id": "d-a", "percent": 70},
            "b": {"template_id": "d-b", "percent": 20},
            "c": {"template_id": "d-c", "percent": 10},
        }
    }
    campaign = make_config({"ab": body}).campaigns[0]
    picks = [pick_variant(campaign, f"p_{i}") for i in range(20_000)]
    for name, share in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
        assert abs(picks.count(name) / 20_000 - share) < 0.015


def _candidates(config, person):
    return [Candidate(c, dict(person), AS_OF.date()) for c in config.campaigns]


def test_priority_gives_one_marketing_message_per_person_and_day():
    config = make_config({"low": campaign_body(priority=5), "high": campaign_body(priority=1)})
    low, high = sorted(decide_all(_candidates(config, PERSON), config.policy, AS_OF),
                       key=lambda c: c.campaign.priority, reverse=True)  # fmt: skip
    assert (high.decision, high.reason) == ("send", "eligible")
    assert (low.decision, low.reason) == ("suppressed", "priority:high")
    earlier_today = PERSON | {"todays_campaign": "other"}
    results = decide_all(_candidates(config, earlier_today), config.policy, AS_OF)
    assert {(c.decision, c.reason) for c in results} == {("suppressed", "priority:other")}


def test_frequency_cap_counts_recent_marketing_messages():
    config = make_config(
        {"a": campaign_body(), "receipt": campaign_body(marketing=False)},
        frequency_cap={"max_messages": 2, "per_days": 7},
    )
    capped = decide_all(
        _candidates(config, PERSON | {"recent_marketing_messages": 2}), config.policy, AS_OF
    )
    outcome = {c.campaign.campaign_id: (c.decision, c.reason) for c in capped}
    assert outcome == {
        "a": ("suppressed", "frequency_cap_2_per_7_days"),
        "receipt": ("send", "eligible"),  # service messages are not capped
    }
    fine = decide_all(
        _candidates(config, PERSON | {"recent_marketing_messages": 1}), config.policy, AS_OF
    )
    assert {c.decision for c in fine} == {"send"}


def test_holdout_and_global_control_are_assigned_once_and_reused():
    config = make_config({"a": campaign_body(holdout_percent=50)}, global_control_percent=50)
    profiles = [f"p_{i}" for i in range(400)]
    first = [decide_all(_candidates(config, PERSON | {"profile_id": p}), config.policy, AS_OF)[0]
             for p in profiles]  # fmt: skip
    arms = {c.arm for c in first}
    assert arms == {"global_control", "holdout", "treatment"}
    for c in first:
        if c.arm == "global_control":
            assert (c.decision, c.reason) == ("holdout", "global_control")
        elif c.arm == "holdout":
            assert (c.decision, c.reason, c.variant) == ("holdout", "campaign_holdout", None)
        else:
            assert (c.decision, c.variant) == ("send", "default")
    stored = PERSON | {"stored_global_arm": "treatment", "stored_arm": "holdout"}
    (again,) = decide_all(_candidates(config, stored), config.policy, AS_OF)
    assert (again.arm, again.new_assignments) == ("holdout", [])


def test_suppressed_people_are_not_assigned_to_an_arm():
    config = make_config({"a": campaign_body(holdout_percent=50)})
    (c,) = decide_all(_candidates(config, PERSON | {"email": None}), config.policy, AS_OF)
    assert (c.decision, c.arm, c.new_assignments) == ("suppressed", None, [])


def test_send_id_is_stable_and_distinct_per_window():
    first = send_id_for("nudge", "p_1", "2026-10-01")
    assert first == send_id_for("nudge", "p_1", "2026-10-01")
    assert first != send_id_for("nudge", "p_1", "2026-10-02")
    assert first != send_id_for("other", "p_1", "2026-10-01")


def test_batch_id_depends_on_messages_and_attempt_only():
    assert batch_id_for(["b", "a"], 1) == batch_id_for(["a", "b"], 1)
    assert batch_id_for(["a", "b"], 1) != batch_id_for(["a", "b"], 2)
    assert batch_id_for(["a", "b"], 1) != batch_id_for(["a"], 1)


def _row(i, send_at=None):
    return {
        "send_id": f"s{i}",
        "profile_id": f"p{i}",
        "email": f"{i}@x.com",
        "template_id": "d-1",
        "campaign_id": "nudge",
        "variant": "a",
        "template_data": {
            "first_name": f"N{i}",
            "since": datetime(2026, 1, 1, tzinfo=UTC),
            "revenue": Decimal("120.50"),
            "orders": Decimal("3"),
        },
        "send_at": send_at,
    }


def test_mail_body_has_one_personalization_per_recipient_with_send_id():
    later = AS_OF + timedelta(hours=5)
    rows = [_row(0), _row(1, send_at=later), _row(2, send_at=AS_OF - timedelta(hours=1))]
    body = mail_body(rows, "from@x.com", sandbox=True, batch_id="b1", now=AS_OF)
    assert [p["custom_args"]["send_id"] for p in body["personalizations"]] == ["s0", "s1", "s2"]
    assert body["custom_args"] == {BATCH_ARG: "b1"}
    assert body["template_id"] == "d-1"
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["personalizations"][0]["dynamic_template_data"] == {
        "first_name": "N0",
        "since": "2026-01-01T00:00:00+00:00",
        "revenue": 120.5,
        "orders": 3,
    }
    # held until later: scheduled; a delivery time already passed: sent at once
    assert [p.get("send_at") for p in body["personalizations"]] == [
        None,
        int(later.timestamp()),
        None,
    ]
    assert "mail_settings" not in mail_body(rows, "f@x.com", False, "b1", AS_OF)


def _http_error(status, headers=None):
    return SimpleNamespace(status_code=status, headers=headers or {})


def test_retry_honours_retry_after_and_stops_on_client_errors():
    assert retry_delay(_http_error(429, {"Retry-After": "7"}), attempt=1) == 7.0
    assert retry_delay(_http_error(429, {"Retry-After": "0"}), attempt=1) == 0.0
    assert retry_delay(_http_error(503), attempt=2) == 4.0
    assert retry_delay(_http_error(500), attempt=1) == 2.0
    assert retry_delay(_http_error(400), attempt=1) is None
    assert retry_delay(_http_error(401), attempt=1) is None
    assert retry_delay(_http_error(429), attempt=4) is None


def test_columns_used_are_the_words_of_sql_predicates_and_the_template_data_columns():
    from journeyflow.audience import columns_used

    config = make_config(
        {
            "vip": campaign_body(
                trigger={"sql": 'Order_Count >= 3 and "touchpoints_last_30d" > 2'},
                content={"template_id": "d-1", "template_data": {"days": "active_days_last_90d"}},
            ),
            "nudge": campaign_body(
                trigger={"stalled_in_stage": {"stage": "consideration", "days": 3}}
            ),
        }
    )
    used = columns_used(config.campaigns)
    assert {"order_count", "touchpoints_last_30d", "active_days_last_90d"} <= used
    assert "touchpoints_last_90d" not in used and "active_days_last_30d" not in used


def test_an_unknown_template_data_column_lists_the_rolling_columns_left_out_of_the_snapshot():
    from journeyflow.activation import template_data_for
    from journeyflow.campaigns import CampaignConfigError

    config = make_config(
        {"vip": campaign_body(content={"template_id": "d-1", "template_data": {"n": "visits"}})}
    )
    person = {"profile_id": "p1", "order_count": 2}  # a snapshot without the rolling counts
    with pytest.raises(CampaignConfigError) as raised:
        template_data_for(config.campaigns[0], person)
    message = str(raised.value)
    assert "unknown profile column 'visits'" in message
    assert "'order_count'" in message and "'touchpoints_last_30d'" in message
