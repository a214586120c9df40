"""Local SendGrid-compatible HTTP sink that accepts and records v3 mail sends without internet.

Besides mail send and global suppressions it answers the Email Activity search
(`GET /v3/messages?query=...`) over the messages it accepted, and can inject faults: error
answers (`fail_next`) and killing the sending process at the network boundary
(`kill_on_mail_send`), so crash recovery is tested for real.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

MAIL_SEND_PATH = "/v3/mail/send"
SUPPRESSIONS_PATH = "/v3/asm/suppressions/global"
MESSAGES_PATH = "/v3/messages"
MAX_PERSONALIZATIONS = 1000
MAX_SCHEDULE_AHEAD_SECONDS = 72 * 3600
MAX_BODY_BYTES = 30 * 1024 * 1024
DEFAULT_HOST = "127.0.0.1"
POLL_INTERVAL_SECONDS = 0.05  # how quickly stop() is noticed
CONTENT_REQUIRED = "Unless a valid template_id is provided, the content parameter is required."
RECIPIENTS_REQUIRED = "recipient_emails must be a non-empty list of email addresses."
SEND_AT_INVALID = "send_at must be a unix timestamp no more than 72 hours in the future."
# one condition of an Email Activity query: unique_args['key']="value", to_email="...", msg_id="..."
QUERY_CONDITION = re.compile(
    r"^\s*(?:unique_args\['(?P<arg>[^']+)'\]|(?P<field>to_email|msg_id))"
    r'\s*=\s*"(?P<value>[^"]*)"\s*$'
)


@dataclass
class Reply:
    """An HTTP answer: status, extra headers and an optional JSON body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


def error_reply(status: int, *errors: tuple[str, str | None], **headers: str) -> Reply:
    """A SendGrid-style error: {"errors": [{"message": ..., "field": ...}, ...]}."""
    body = {"errors": [{"message": message, "field": name} for message, name in errors]}
    return Reply(status, dict(headers), body)


def _status_message(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def has_bearer_token(authorization: str | None) -> bool:
    """Whether an Authorization header carries a non-empty bearer token."""
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def mail_send_errors(body: Any) -> list[tuple[str, str | None]]:
    """Validation errors SendGrid would report for a /v3/mail/send body, as (message, field)."""
    if not isinstance(body, dict):
        return [("The request body must be a JSON object.", None)]
    errors = _personalization_errors(body.get("personalizations"))
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        errors.append(("The from object must be provided for every email send.", "from.email"))
    if not body.get("template_id") and not _has_content(body.get("content")):
        errors.append((CONTENT_REQUIRED, "content"))
    return errors


def _personalization_errors(personalizations: Any) -> list[tuple[str, str | None]]:
    if not isinstance(personalizations, list) or not personalizations:
        message = "The personalizations field is required and must have at least one item."
        return [(message, "personalizations")]
    if len(personalizations) > MAX_PERSONALIZATIONS:
        message = f"You may not have more than {MAX_PERSONALIZATIONS} personalizations per email."
        return [(message, "personalizations")]
    errors = [
        ("The to array is required for all personalization objects.", f"personalizations.{i}.to")
        for i, item in enumerate(personalizations)
        if _first_recipient(item) is None
    ]
    return errors + [
        (SEND_AT_INVALID, f"personalizations.{i}.send_at")
        for i, item in enumerate(personalizations)
        if isinstance(item, dict) and "send_at" in item and not _valid_send_at(item["send_at"])
    ]


def _valid_send_at(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value <= time.time() + MAX_SCHEDULE_AHEAD_SECONDS
    )


def _first_recipient(personalization: Any) -> str | None:
    if not isinstance(personalization, dict):
        return None
    to = personalization.get("to")
    if not isinstance(to, list) or not to or not isinstance(to[0], dict):
        return None
    return to[0].get("email") or None


def _has_content(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") and block.get("value") for block in content
    )


def suppression_errors(body: Any) -> list[tuple[str, str | None]]:
    """Validation errors for a global suppression body {"recipient_emails": [...]}."""
    emails = body.get("recipient_emails") if isinstance(body, dict) else None
    if not isinstance(emails, list) or not emails or not all(isinstance(e, str) for e in emails):
        return [(RECIPIENTS_REQUIRED, "recipient_emails")]
    return []


def message_recipients(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(first `to` email, merged custom_args) for each personalization of a mail-send body."""
    shared = body.get("custom_args") or {}
    return [
        (_first_recipient(item), {**shared, **(item.get("custom_args") or {})})
        for item in body["personalizations"]
    ]


def parse_activity_query(query: str) -> list[tuple[str, str, str]] | None:
    """Conditions of an Email Activity query joined by AND, as (kind, name, value); None if
    the query uses anything else."""
    conditions = []
    for part in re.split(r"\s+AND\s+", query.strip()) if query.strip() else []:
        match = QUERY_CONDITION.match(part)
        if match is None:
            return None
        if match["arg"] is not None:
            conditions.append(("unique_args", match["arg"], match["value"]))
        else:
            conditions.append(("field", match["field"], match["value"]))
    return conditions


def _matches(message: dict[str, Any], conditions: list[tuple[str, str, str]]) -> bool:
    for kind, name, value in conditions:
        actual = message["unique_args"].get(name) if kind == "unique_args" else message.get(name)
        if actual != value:
            return False
    return True


class SendGridSink:
    """A background HTTP server answering like SendGrid's v3 mail-send and suppression APIs.

    Accepted requests are kept in memory (`requests`) and, when `record_path` is given,
    appended to that file as JSON lines; the Authorization header is never stored. Every
    accepted personalization is also a message the Email Activity search finds (in memory,
    for the lifetime of this sink); `activity_enabled = False` makes that API answer 403, as
    for an account without the Email Activity add-on.
    """

    def __init__(
        self,
        record_path: Path | str | None = None,
        port: int = 0,
        host: str = DEFAULT_HOST,
        verbose: bool = False,
    ) -> None:
        self.record_path = Path(record_path) if record_path else None
        self.verbose = verbose
        self._address = (host, port)
        self._lock = threading.Lock()
        self._accepted: list[dict[str, Any]] = []
        self._failures: deque[tuple[str, int, int | None]] = deque()
        self._activity: list[dict[str, Any]] = []
        self._activity_queries: list[str] = []
        self._kill: list | None = None  # [pid, signal, after_accepting, requests to go]
        self.activity_enabled = True
        self._sent = 0
        self._server: _SinkServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SendGridSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> SendGridSink:
        """Bind the port and serve in a daemon thread; returns the sink itself."""
        if self._server is None:
            self._sent = self._recorded_sends()
            self._server = _SinkServer(self._address, _SinkHandler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
                name="sendgrid-sink",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call more than once."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    @property
    def url(self) -> str:
        """Base URL to pass as `host=` to sendgrid.SendGridAPIClient."""
        if self._server is None:
            raise RuntimeError("the sink is not running; call start() or use it as a context")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of the accepted requests, oldest first."""
        with self._lock:
            return list(self._accepted)

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """(to_email, custom_args) per personalization across accepted mail sends."""
        return [
            recipient
            for request in self.requests
            if request["path"] == MAIL_SEND_PATH
            for recipient in message_recipients(request["body"])
        ]

    @property
    def activity_queries(self) -> list[str]:
        """The Email Activity queries received, oldest first."""
        with self._lock:
            return list(self._activity_queries)

    def fail_next(
        self,
        n: int,
        status: int = 429,
        retry_after: int | None = 1,
        path: str = MAIL_SEND_PATH,
    ) -> None:
        """Answer the next n requests to `path` (mail send unless told) with `status`."""
        with self._lock:
            self._failures.extend([(path, status, retry_after)] * n)

    @property
    def pending_failures(self) -> int:
        """Injected failures not yet used up by requests."""
        with self._lock:
            return len(self._failures)

    def kill_on_mail_send(
        self, pid: int, after_accepting: bool = True, nth: int = 1, sig: int = signal.SIGKILL
    ) -> None:
        """On the `nth` mail send from now, kill process `pid` before answering: after accepting
        the message (the sender dies between the API call and its own bookkeeping), or before
        (the request is lost). Fires once."""
        with self._lock:
            self._kill = [pid, sig, after_accepting, nth]

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request; called by the HTTP handler thread."""
        route, _, query_string = path.partition("?")
        route = route.rstrip("/")
        if method == "GET" and route == MESSAGES_PATH:
            return self._search_activity(headers, query_string)
        if method != "POST" or route not in (MAIL_SEND_PATH, SUPPRESSIONS_PATH):
            return error_reply(404, ("not found", None))
        if route == MAIL_SEND_PATH and self._kill_due() and self._kill_fires(False):
            return error_reply(503, ("connection lost", None))
        if failure := self._take_failure(route):
            status, retry_after = failure
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return error_reply(status, (_status_message(status), None), **extra)
        if not has_bearer_token(_header(headers, "Authorization")):
            return error_reply(401, ("authorization required", None))
        try:
            body = json.loads(raw or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error_reply(400, ("Bad Request", None))
        if route == MAIL_SEND_PATH:
            return self._accept_mail_send(route, headers, body)
        return self._accept_suppression(route, headers, body)

    def _accept_mail_send(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        if errors := mail_send_errors(body):
            return error_reply(400, *errors)
        with self._lock:
            self._sent += 1
            message_id = f"sink-{self._sent:010d}"
            self._record(path, headers, body, message_id)
            self._index_messages(body, message_id)
        self._kill_fires(after_accepting=True)
        return Reply(202, {"X-Message-Id": message_id})

    def _kill_due(self) -> bool:
        """Count one mail send towards an armed kill; whether this is the one."""
        with self._lock:
            if self._kill is None:
                return False
            self._kill[3] -= 1
            return self._kill[3] <= 0

    def _kill_fires(self, after_accepting: bool) -> bool:
        """Kill the armed process if it is due at this moment; whether it fired."""
        with self._lock:
            if self._kill is None or self._kill[3] > 0 or self._kill[2] != after_accepting:
                return False
            pid, sig = self._kill[:2]
            self._kill = None
        os.kill(pid, sig)
        return True

    def _index_messages(self, body: dict[str, Any], message_id: str) -> None:
        """Make each personalization findable by Email Activity search; caller holds the lock."""
        for index, (to_email, unique_args) in enumerate(message_recipients(body)):
            self._activity.append(
                {
                    "msg_id": f"{message_id}.{index}",
                    "from_email": body["from"]["email"],
                    "to_email": to_email,
                    "subject": body.get("subject", ""),
                    "status": "processed",
                    "opens_count": 0,
                    "clicks_count": 0,
                    "last_event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "unique_args": unique_args,
                }
            )

    def _search_activity(self, headers: dict[str, str], query_string: str) -> Reply:
        if not has_bearer_token(_header(headers, "Authorization")):
            return error_reply(401, ("authorization required", None))
        if not self.activity_enabled:
            return error_reply(403, ("access forbidden", None))
        params = parse_qs(query_string)
        query = params.get("query", [""])[0]
        limit = params.get("limit", ["10"])[0]
        conditions = parse_activity_query(query)
        if conditions is None:
            return error_reply(400, ("invalid query", "query"))
        if not limit.isdigit() or not 0 < int(limit) <= MAX_PERSONALIZATIONS:
            return error_reply(400, ("limit must be between 1 and 1000", "limit"))
        with self._lock:
            self._activity_queries.append(query)
            found = [m for m in self._activity if _matches(m, conditions)][: int(limit)]
        public = [{k: v for k, v in m.items() if k != "unique_args"} for m in found]
        return Reply(200, body={"messages": public})

    def _accept_suppression(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        if errors := suppression_errors(body):
            return error_reply(400, *errors)
        with self._lock:
            self._record(path, headers, body, None)
        return Reply(201, body={"recipient_emails": body["recipient_emails"]})

    def _take_failure(self, route: str) -> tuple[int, int | None] | None:
        with self._lock:
            if not self._failures or self._failures[0][0] != route:
                return None
            return self._failures.popleft()[1:]

    def _record(
        self, path: str, headers: dict[str, str], body: Any, message_id: str | None
    ) -> None:
        """Keep one accepted request; the caller holds the lock."""
        entry = {
            "path": path,
            "method": "POST",
            "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
            "body": body,
            "message_id": message_id,
        }
        self._accepted.append(entry)
        if self.record_path is not None:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            with self.record_path.open("a", encoding="utf-8", newline="\n") as handle:
                handle.write(json.dumps(entry) + "\n")

    def _recorded_sends(self) -> int:
        """Mail sends already in the record file, so message ids stay unique across restarts."""
        if self.record_path is None or not self.record_path.exists():
            return 0
        lines = self.record_path.read_text(encoding="utf-8").splitlines()
        return sum(1 for line in lines if line and json.loads(line).get("path") == MAIL_SEND_PATH)


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _content_length(value: str | None) -> int | None:
    """The declared body size, 0 when absent, None when it is not a non-negative integer."""
    if not value:
        return 0
    return int(value) if value.isdigit() else None


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, sink: SendGridSink) -> None:
        self.sink = sink
        super().__init__(address, handler)


class _SinkHandler(BaseHTTPRequestHandler):
    server: _SinkServer
    server_version = "SendGridSink/1.0"

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = _content_length(self.headers.get("Content-Length"))
        if length is None:
            self._send(error_reply(400, ("invalid Content-Length", None)))
            return
        if length > MAX_BODY_BYTES:
            self._send(error_reply(413, ("payload too large", None)))
            return
        raw = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        self._send(self.server.sink.handle(self.command, self.path, headers, raw))

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.sink.verbose:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> int:
    """Serve the sink in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=3025)
    parser.add_argument("--record", type=Path, default=None, help="append accepted requests here")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    sink = SendGridSink(record_path=args.record, port=args.port, host=args.host, verbose=True)
    with sink:
        print(f"SendGrid sink listening on {sink.url} (Ctrl-C to stop)", flush=True)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("SendGrid sink stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
