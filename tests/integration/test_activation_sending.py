"""Sending exactly once with the real sendgrid client against the local SendGrid sink.

Exact request bodies, reruns, 429 and 5xx handling, a process killed between the API call and
its commit, dry runs and expiry; the API key never appears in logs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
import yaml

from journeyflow.activation import send_id_for
from journeyflow.sendgrid_api import batch_id_for
from tests.integration.activation_world import (
    API_KEY,
    AS_OF,
    FROM_EMAIL,
    campaign,
    config,
    person,
)

pytestmark = pytest.mark.integration

NUDGE = config(campaign("nudge"))
WINDOW = (AS_OF - timedelta(days=5)).date().isoformat()


def _send_id(profile_id: str) -> str:
    return send_id_for("nudge", profile_id, WINDOW)


def test_exact_request_bodies_for_a_small_audience(activation_world):
    world = activation_world
    world.add_people(
        person("p_alice"),
        person("p_bob", first_name="Bob", country="US", time_zone="America/New_York"),
        person("p_carol", email_consent=False),
    )
    reports = world.run(NUDGE)
    alice, bob = _send_id("p_alice"), _send_id("p_bob")
    assert [request["body"] for request in world.sink.requests] == [
        {
            "from": {"email": FROM_EMAIL},
            "template_id": "d-nudge",
            "custom_args": {"send_batch": batch_id_for([alice, bob], 1)},
            "personalizations": [
                {
                    "to": [{"email": email}],
                    "custom_args": {
                        "send_id": send_id,
                        "campaign_id": "nudge",
                        "variant": "default",
                    },
                    "dynamic_template_data": {"first_name": name, "stage": "consideration"},
                }
                for email, send_id, name in sorted(
                    [
                        ("p_alice@example.com", alice, "P_alice"),
                        ("p_bob@example.com", bob, "Bob"),
                    ],
                    key=lambda item: item[1],
                )
            ],
        }
    ]
    assert world.statuses() == {"p_alice": "sent", "p_bob": "sent"}
    assert world.decisions()[("nudge", "p_carol")] == ("suppressed", "no_marketing_consent")
    assert (reports["nudge"].sent, reports["nudge"].suppressed) == (2, 1)
    message_ids = {
        row["sg_message_id"] for row in world.rows("select * from activation.campaign_sends")
    }
    assert message_ids == {world.sink.requests[0]["message_id"]}


def test_sandbox_mode_and_batches_of_at_most_the_batch_size(activation_world):
    world = activation_world
    world.add_people(*(person(f"p_{i:02d}") for i in range(5)))
    world.run(NUDGE, delivery=world.delivery(sandbox=True, batch_size=2))
    bodies = [request["body"] for request in world.sink.requests]
    assert [len(body["personalizations"]) for body in bodies] == [2, 2, 1]
    assert all(body["mail_settings"] == {"sandbox_mode": {"enable": True}} for body in bodies)
    sent = [args["send_id"] for _, args in world.sink.messages()]
    assert sorted(sent) == sorted(_send_id(f"p_{i:02d}") for i in range(5))


def test_rerun_sends_nothing_new(activation_world):
    world = activation_world
    world.add_people(person("p_alice"), person("p_bob"))
    world.run(NUDGE)
    decisions = world.rows("select * from activation.campaign_decisions order by profile_id")
    world.run(NUDGE, run_id="run-2")
    world.run(NUDGE, as_of=AS_OF + timedelta(days=1), run_id="run-3")
    assert len(world.sink.requests) == 1
    assert (
        world.rows("select * from activation.campaign_decisions order by profile_id") == decisions
    )


def test_429_then_success_delivers_once_after_retry_after(activation_world):
    world = activation_world
    world.add_people(person("p_alice"))
    world.sink.fail_next(1, status=429, retry_after=3)
    reports = world.run(NUDGE)
    assert world.sleeps == [3.0]
    assert [args["send_id"] for _, args in world.sink.messages()] == [_send_id("p_alice")]
    (row,) = world.rows("select status, attempts from activation.campaign_sends")
    assert row == {"status": "sent", "attempts": 1}
    assert reports["nudge"].sent == 1


def test_500_forever_ends_failed_without_duplicates(activation_world):
    world = activation_world
    world.add_people(person("p_alice"), person("p_bob"))
    world.sink.fail_next(10, status=500, retry_after=None)
    reports = world.run(NUDGE)
    assert world.sleeps == [2.0, 4.0, 8.0]  # 4 attempts with exponential backoff
    assert world.sink.pending_failures == 6
    assert world.sink.messages() == []
    assert reports["nudge"].failed == 2
    rows = world.rows("select status, error from activation.campaign_sends")
    assert {row["status"] for row in rows} == {"failed"}
    assert all(row["error"].startswith("500 ") for row in rows)
    world.run(NUDGE, run_id="run-2")
    assert world.sink.pending_failures == 6  # no new request for failed messages
    assert world.sink.messages() == []


def test_other_client_errors_fail_at_once_with_sendgrids_error(activation_world):
    world = activation_world
    world.add_people(person("p_alice"))
    world.sink.fail_next(1, status=400, retry_after=None)
    world.run(NUDGE)
    assert world.sleeps == []
    (row,) = world.rows("select status, error from activation.campaign_sends")
    assert row["status"] == "failed"
    assert row["error"].startswith("400 ") and "bad request" in row["error"]


def test_dry_run_writes_decisions_and_outbox_only_and_stale_messages_expire(activation_world):
    world = activation_world
    world.add_people(person("p_alice"), person("p_bob"))
    reports = world.run(NUDGE, delivery=None)
    assert world.sink.requests == []
    assert world.statuses() == {"p_alice": "pending", "p_bob": "pending"}
    assert reports["nudge"].decided_send == 2
    later = AS_OF + timedelta(hours=49)  # past max_send_delay_hours (48)
    reports = world.run(NUDGE, as_of=later, run_id="run-2")
    assert world.sink.requests == []
    assert world.statuses() == {"p_alice": "expired", "p_bob": "expired"}
    assert reports["nudge"].expired == 2


def test_pending_messages_from_a_dry_run_go_out_with_the_next_live_run(activation_world):
    world = activation_world
    world.add_people(person("p_alice"))
    world.run(NUDGE, delivery=None)
    world.run(NUDGE, as_of=AS_OF + timedelta(hours=24), run_id="run-2")
    assert world.statuses() == {"p_alice": "sent"}
    assert len(world.sink.messages()) == 1


def test_api_key_never_appears_in_client_logs(activation_world, caplog):
    world = activation_world
    world.add_people(person("p_alice"))
    with caplog.at_level(logging.DEBUG):
        world.sink.fail_next(1, status=401, retry_after=None)
        world.run(NUDGE)
        world.add_people(person("p_bob"))
        world.run(NUDGE, run_id="run-2")
    assert "HEADERS" in caplog.text  # the client logged its request headers...
    assert "Bearer ***" in caplog.text  # ...with the key redacted
    assert API_KEY not in caplog.text
    assert API_KEY not in json.dumps(
        world.rows("select * from activation.campaign_sends"), default=str
    )


# --- a process killed between the API call and the commit --------------------------------

SEND_STEP = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from journeyflow import pipeline

    sys.stdin.readline()  # wait until the test has armed the sink
    print(pipeline.send_campaigns(datetime.fromisoformat(sys.argv[1]), "run-killed"), flush=True)
    """
)


@pytest.fixture()
def send_step_env(activation_world, tmp_path, monkeypatch):
    """Settings for pipeline.send_campaigns against the test warehouse and sink."""
    campaigns_file = tmp_path / "campaigns.yml"
    campaigns_file.write_text(yaml.safe_dump({"campaigns": campaign("nudge", holdout_percent=0)}))
    env = {
        "JOURNEY_WAREHOUSE_URL": activation_world.url,
        "JOURNEY_CAMPAIGNS_FILE": str(campaigns_file),
        "JOURNEY_SENDGRID_HOST": activation_world.sink.url,
        "JOURNEY_SENDGRID_FROM": FROM_EMAIL,
        "JOURNEY_CAMPAIGN_MODE": "live",
        "JOURNEY_SENDGRID_BATCH_SIZE": "2",
        "AIRFLOW_CONN_SENDGRID_DEFAULT": json.dumps({"conn_type": "generic", "password": API_KEY}),
        "no_proxy": "127.0.0.1,localhost",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _run_send_step_and_kill(world, after_accepting: bool) -> subprocess.CompletedProcess:
    """Run the send step in a child process; the sink kills it on its 2nd request."""
    child = subprocess.Popen(
        [sys.executable, "-c", SEND_STEP, AS_OF.isoformat()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    world.sink.kill_on_mail_send(child.pid, after_accepting=after_accepting, nth=2)
    out, err = child.communicate("go\n", timeout=120)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


@pytest.mark.parametrize("after_accepting", [True, False], ids=["accepted", "lost"])
def test_killed_between_call_and_commit_no_duplicate_after_retry(
    activation_world, send_step_env, monkeypatch, after_accepting
):
    from journeyflow import pipeline

    world = activation_world
    world.add_people(*(person(f"p_{i}") for i in range(5)))
    killed = _run_send_step_and_kill(world, after_accepting)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    statuses = sorted(world.statuses().values())
    assert statuses == ["pending", "sending", "sending", "sent", "sent"]
    assert len(world.sink.messages()) == (4 if after_accepting else 2)
    assert API_KEY not in killed.stdout + killed.stderr

    # An Airflow retry right away: too early to trust the activity feed, nothing is re-sent.
    monkeypatch.setenv("JOURNEY_RECONCILE_GRACE_SECONDS", "900")
    (report,) = pipeline.send_campaigns(AS_OF, "run-retry-1")
    assert report["in_doubt"] == 2
    assert sorted(world.statuses().values()) == ["sending", "sending", "sent", "sent", "sent"]

    # A later retry: the in-doubt batch is looked up in Email Activity by its batch id.
    monkeypatch.setenv("JOURNEY_RECONCILE_GRACE_SECONDS", "0")
    (report,) = pipeline.send_campaigns(AS_OF, "run-retry-2")
    assert set(world.statuses().values()) == {"sent"}
    assert (report["reconciled_sent"], report["requeued"]) == (
        (2, 0) if after_accepting else (0, 2)
    )
    delivered = [args["send_id"] for _, args in world.sink.messages()]
    assert sorted(delivered) == sorted(_send_id(f"p_{i}") for i in range(5))  # once each
    assert len(world.sink.activity_queries) == 1


def test_in_doubt_messages_stay_unsent_when_email_activity_is_unavailable(
    activation_world, send_step_env, monkeypatch
):
    from journeyflow import pipeline

    world = activation_world
    world.add_people(*(person(f"p_{i}") for i in range(4)))
    killed = _run_send_step_and_kill(world, after_accepting=False)
    assert killed.returncode == -signal.SIGKILL
    world.sink.activity_enabled = False
    monkeypatch.setenv("JOURNEY_RECONCILE_GRACE_SECONDS", "0")
    (report,) = pipeline.send_campaigns(AS_OF, "run-retry")
    assert report["in_doubt"] == 2
    assert sorted(world.statuses().values()) == ["sending", "sending", "sent", "sent"]
    assert len(world.sink.messages()) == 2  # never re-sent blindly
