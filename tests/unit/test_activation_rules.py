"""Suppression order, idempotency keys, SendGrid bodies and retry decisions of activation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from journeyflow.activation import _retry_delay, decide, mail_body, send_id_for
from journeyflow.campaigns import Campaign

CAMPAIGN = Campaign("nudge", "d-1", "consideration", 3)
PERSON = {
    "email": "a@example.com",
    "email_status": "ok",
    "email_consent": True,
    "has_open_support_case": False,
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ("send", "eligible")),
        ({"email": None}, ("suppressed", "no_email")),
        ({"email_status": "bounced"}, ("suppressed", "email_bounced")),
        (
            {"email_status": "unsubscribed", "email_consent": False},
            ("suppressed", "email_unsubscribed"),
        ),
        ({"email_consent": False}, ("suppressed", "no_marketing_consent")),
        ({"has_open_support_case": True}, ("suppressed", "open_support_case")),
    ],
)
def test_first_suppression_reason_wins(changes, expected):
    assert decide(CAMPAIGN, {**PERSON, **changes}) == expected


def test_open_case_does_not_block_service_messages():
    service = Campaign("receipt", "d-2", "decision", 0, marketing=False)
    assert decide(service, {**PERSON, "has_open_support_case": True}) == ("send", "eligible")


def test_send_id_is_stable_and_distinct_per_window():
    first = send_id_for("nudge", "p_1", "2026-10-01")
    assert first == send_id_for("nudge", "p_1", "2026-10-01")
    assert first != send_id_for("nudge", "p_1", "2026-10-02")
    assert first != send_id_for("other", "p_1", "2026-10-01")


def test_mail_body_has_one_personalization_per_recipient_with_send_id():
    rows = [
        {
            "send_id": f"s{i}",
            "profile_id": f"p{i}",
            "email": f"{i}@x.com",
            "template_id": "d-1",
            "campaign_id": "nudge",
        }
        for i in range(3)
    ]
    body = mail_body(rows, "from@x.com", sandbox=True)
    assert [p["custom_args"]["send_id"] for p in body["personalizations"]] == ["s0", "s1", "s2"]
    assert body["template_id"] == "d-1"
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert "mail_settings" not in mail_body(rows, "from@x.com", sandbox=False)


def _http_error(status, headers=None):
    return SimpleNamespace(status_code=status, headers=headers or {})


def test_retry_honours_retry_after_and_stops_on_client_errors():
    assert _retry_delay(_http_error(429, {"Retry-After": "7"}), attempt=1) == 7.0
    assert _retry_delay(_http_error(503), attempt=2) == 4.0
    assert _retry_delay(_http_error(400), attempt=1) is None
    assert _retry_delay(_http_error(429), attempt=4) is None
