"""Unit tests for the local SendGrid sink, driven by the real sendgrid client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    HTTPError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from journeyflow.sendgrid_sink import SendGridSink

API_KEY = "SG.unit-test-key"
SENDER = "hello@shop.example.com"


@pytest.fixture(autouse=True)
def _bypass_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def record_path(tmp_path: Path) -> Path:
    return tmp_path / "sendgrid" / "requests.jsonl"


@pytest.fixture
def sink(record_path: Path) -> Iterator[SendGridSink]:
    with SendGridSink(record_path=record_path) as running:
        yield running


def client_for(sink: SendGridSink, api_key: str = API_KEY) -> SendGridAPIClient:
    return SendGridAPIClient(api_key=api_key, host=sink.url)


def campaign_mail(to_email: str, send_id: str) -> Mail:
    mail = Mail(from_email=SENDER, to_emails=to_email)
    mail.template_id = "d-stalledcart0001"
    mail.dynamic_template_data = {"first_name": "Alice"}
    mail.custom_arg = CustomArg("campaign_id", "stalled_consideration_2026_11")
    mail.custom_arg = CustomArg("send_id", send_id, p=0)
    return mail


def plain_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "personalizations": [{"to": [{"email": "bob@example.com"}]}],
        "from": {"email": SENDER},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi Bob"}],
    }
    return body | overrides


def test_accepted_send_is_recorded_with_custom_args(sink: SendGridSink) -> None:
    response = client_for(sink).send(campaign_mail("alice.smith@example.com", "send-001"))
    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id
    assert sink.messages() == [
        (
            "alice.smith@example.com",
            {"campaign_id": "stalled_consideration_2026_11", "send_id": "send-001"},
        )
    ]
    (request,) = sink.requests
    assert request["path"] == "/v3/mail/send" and request["method"] == "POST"
    assert request["message_id"] == message_id
    assert request["body"]["template_id"] == "d-stalledcart0001"
    assert "Authorization" not in request["headers"]


def test_message_ids_are_unique_and_deterministic(sink: SendGridSink) -> None:
    client = client_for(sink)
    ids = [
        client.send(campaign_mail(f"p{i}@example.com", f"s{i}")).headers["X-Message-Id"]
        for i in range(3)
    ]
    assert len(set(ids)) == 3
    with SendGridSink() as fresh:
        again = [client_for(fresh).send(plain_body()).headers["X-Message-Id"] for _ in range(3)]
    assert again == ids


def test_missing_authorization_is_rejected(sink: SendGridSink) -> None:
    client = client_for(sink)
    client.client.request_headers.pop("Authorization")
    with pytest.raises(UnauthorizedError) as caught:
        client.send(plain_body())
    assert caught.value.status_code == 401
    assert caught.value.to_dict["errors"][0]["message"]
    assert sink.requests == []


def test_empty_bearer_token_is_rejected(sink: SendGridSink) -> None:
    client = client_for(sink)
    client.client.request_headers["Authorization"] = "Bearer "
    with pytest.raises(UnauthorizedError):
        client.send(plain_body())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (plain_body(personalizations=[]), "personalizations"),
        (
            plain_body(personalizations=[{"to": [{"email": "x@example.com"}]}] * 1001),
            "personalizations",
        ),
        (plain_body(personalizations=[{"subject": "no recipient"}]), "personalizations.0.to"),
        (plain_body(**{"from": {"name": "No Address"}}), "from.email"),
        ({k: v for k, v in plain_body().items() if k != "content"}, "content"),
    ],
)
def test_invalid_bodies_get_sendgrid_style_400(
    sink: SendGridSink, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequestsError) as caught:
        client_for(sink).send(body)
    errors = caught.value.to_dict["errors"]
    assert field in {error["field"] for error in errors}
    assert all(error["message"] for error in errors)
    assert sink.requests == []


def test_non_json_body_is_a_bad_request(sink: SendGridSink) -> None:
    request = urllib.request.Request(
        f"{sink.url}/v3/mail/send",
        data=b"{not json",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["errors"]


def test_fail_next_returns_429_with_retry_after_then_recovers(sink: SendGridSink) -> None:
    sink.fail_next(1, status=429, retry_after=1)
    client = client_for(sink)
    with pytest.raises(TooManyRequestsError) as caught:
        client.send(campaign_mail("carol@example.com", "send-002"))
    assert caught.value.status_code == 429
    assert caught.value.headers["Retry-After"] == "1"
    assert sink.requests == []
    response = client.send(campaign_mail("carol@example.com", "send-002"))
    assert response.status_code == 202
    assert [to for to, _ in sink.messages()] == ["carol@example.com"]


def test_fail_next_can_inject_server_errors_without_retry_after(sink: SendGridSink) -> None:
    sink.fail_next(2, status=503, retry_after=None)
    client = client_for(sink)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError) as caught:
            client.send(plain_body())
        assert caught.value.status_code == 503
        assert "Retry-After" not in caught.value.headers
    assert client.send(plain_body()).status_code == 202


def test_global_suppression_is_echoed_and_recorded(sink: SendGridSink) -> None:
    emails = ["bounced@example.com", "unsubscribed@example.com"]
    response = (
        client_for(sink)
        .client.asm.suppressions._("global")
        .post(request_body={"recipient_emails": emails})
    )
    assert response.status_code == 201
    assert response.to_dict == {"recipient_emails": emails}
    (request,) = sink.requests
    assert request["path"] == "/v3/asm/suppressions/global"
    assert request["message_id"] is None
    assert sink.messages() == []


def test_unknown_paths_are_not_found(sink: SendGridSink) -> None:
    with pytest.raises(NotFoundError):
        client_for(sink).client.templates.get()
    with pytest.raises(NotFoundError):
        client_for(sink).client.mail.batch.post(request_body={})


def test_record_file_has_every_accepted_request_and_no_api_key(
    sink: SendGridSink, record_path: Path
) -> None:
    client = client_for(sink)
    client.send(campaign_mail("dave@example.com", "send-003"))
    client.send(plain_body())
    client.client.asm.suppressions._("global").post(
        request_body={"recipient_emails": ["x@example.com"]}
    )
    text = record_path.read_text(encoding="utf-8")
    assert API_KEY not in text and "Bearer" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == sink.requests
    assert [line["path"] for line in lines] == ["/v3/mail/send"] * 2 + [
        "/v3/asm/suppressions/global"
    ]
    assert all(line["method"] == "POST" and line["headers"] for line in lines)


def test_message_ids_continue_after_a_restart_with_the_same_record_file(record_path: Path) -> None:
    with SendGridSink(record_path=record_path) as first:
        before = client_for(first).send(plain_body()).headers["X-Message-Id"]
    with SendGridSink(record_path=record_path) as second:
        after = client_for(second).send(plain_body()).headers["X-Message-Id"]
    assert before != after
    assert len(record_path.read_text(encoding="utf-8").splitlines()) == 2


def test_url_requires_a_running_sink() -> None:
    sink = SendGridSink()
    with pytest.raises(RuntimeError):
        _ = sink.url
    sink.start()
    try:
        assert sink.url.startswith("http://127.0.0.1:")
    finally:
        sink.stop()
        sink.stop()


def test_concurrent_sends_are_all_recorded(sink: SendGridSink) -> None:
    def send(i: int) -> str:
        return client_for(sink).send(plain_body()).headers["X-Message-Id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(send, range(40)))
    assert len(set(ids)) == 40
    assert len(sink.requests) == 40


def _search(client: SendGridAPIClient, query: str, limit: int = 10) -> list[dict[str, Any]]:
    response = client.client.messages.get(query_params={"query": query, "limit": limit})
    assert response.status_code == 200
    return json.loads(response.body)["messages"]


def test_email_activity_finds_accepted_messages_by_custom_arg(sink: SendGridSink) -> None:
    client = client_for(sink)
    client.send(campaign_mail("erin@example.com", "send-010"))
    client.send(campaign_mail("fay@example.com", "send-011"))
    (found,) = _search(client, "unique_args['send_id']=\"send-011\"")
    assert found["to_email"] == "fay@example.com"
    assert found["msg_id"].startswith("sink-")
    both = "unique_args['campaign_id']=\"stalled_consideration_2026_11\""
    assert len(_search(client, both)) == 2
    assert len(_search(client, both, limit=1)) == 1
    combined = f'{both} AND to_email="erin@example.com"'
    assert [m["to_email"] for m in _search(client, combined)] == ["erin@example.com"]
    assert _search(client, "unique_args['send_id']=\"never-sent\"") == []
    assert sink.activity_queries[0] == "unique_args['send_id']=\"send-011\""
    assert [r["path"] for r in sink.requests] == ["/v3/mail/send"] * 2  # searches not recorded


def test_email_activity_rejects_unknown_queries_and_can_be_unavailable(sink: SendGridSink) -> None:
    client = client_for(sink)
    with pytest.raises(BadRequestsError):
        _search(client, "subject LIKE 'x%'")
    sink.activity_enabled = False
    with pytest.raises(HTTPError) as caught:
        _search(client, 'to_email="a@example.com"')
    assert caught.value.status_code == 403


def test_send_at_more_than_72_hours_ahead_is_rejected(sink: SendGridSink) -> None:
    personalization = {"to": [{"email": "x@example.com"}], "send_at": int(time.time()) + 80 * 3600}
    with pytest.raises(BadRequestsError) as caught:
        client_for(sink).send(plain_body(personalizations=[personalization]))
    assert "personalizations.0.send_at" in {e["field"] for e in caught.value.to_dict["errors"]}
    personalization["send_at"] = int(time.time()) + 3600
    assert client_for(sink).send(plain_body(personalizations=[personalization])).status_code == 202


@pytest.mark.parametrize("after_accepting", [True, False])
def test_kill_on_mail_send_kills_the_sender_before_it_hears_back(
    sink: SendGridSink, after_accepting: bool
) -> None:
    sender = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, urllib.request\n"
            "sys.stdin.readline()\n"
            f"request = urllib.request.Request('{sink.url}/v3/mail/send', method='POST',"
            " data=sys.argv[1].encode(),"
            " headers={'Authorization': 'Bearer k', 'Content-Type': 'application/json'})\n"
            "urllib.request.urlopen(request, timeout=10)\n"
            "print('answered')\n",
            json.dumps(plain_body()),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "no_proxy": "127.0.0.1"},
    )
    sink.kill_on_mail_send(sender.pid, after_accepting=after_accepting)
    out, _ = sender.communicate("go\n", timeout=30)
    assert sender.returncode == -signal.SIGKILL
    assert out == ""
    assert len(sink.messages()) == (1 if after_accepting else 0)
    client_for(sink).send(plain_body())  # fires once only
    assert len(sink.messages()) == (2 if after_accepting else 1)
