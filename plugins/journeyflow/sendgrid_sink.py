"""Local SendGrid-compatible HTTP sink that accepts and records v3 mail sends without internet."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAIL_SEND_PATH = "/v3/mail/send"
SUPPRESSIONS_PATH = "/v3/asm/suppressions/global"
MAX_PERSONALIZATIONS = 1000
MAX_BODY_BYTES = 30 * 1024 * 1024
DEFAULT_HOST = "127.0.0.1"
POLL_INTERVAL_SECONDS = 0.05  # how quickly stop() is noticed
CONTENT_REQUIRED = "Unless a valid template_id is provided, the content parameter is required."
RECIPIENTS_REQUIRED = "recipient_emails must be a non-empty list of email addresses."


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
    return [
        ("The to array is required for all personalization objects.", f"personalizations.{i}.to")
        for i, item in enumerate(personalizations)
        if _first_recipient(item) is None
    ]


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


class SendGridSink:
    """A background HTTP server answering like SendGrid's v3 mail-send and suppression APIs.

    Accepted requests are kept in memory (`requests`) and, when `record_path` is given,
    appended to that file as JSON lines; the Authorization header is never stored.
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
        self._failures: deque[tuple[int, int | None]] = deque()
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

    def fail_next(self, n: int, status: int = 429, retry_after: int | None = 1) -> None:
        """Answer the next n mail-send requests with `status` (and Retry-After when given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * n)

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request; called by the HTTP handler thread."""
        route = path.split("?", 1)[0].rstrip("/")
        if method != "POST" or route not in (MAIL_SEND_PATH, SUPPRESSIONS_PATH):
            return error_reply(404, ("not found", None))
        if route == MAIL_SEND_PATH and (failure := self._take_failure()):
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
        return Reply(202, {"X-Message-Id": message_id})

    def _accept_suppression(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        if errors := suppression_errors(body):
            return error_reply(400, *errors)
        with self._lock:
            self._record(path, headers, body, None)
        return Reply(201, body={"recipient_emails": body["recipient_emails"]})

    def _take_failure(self) -> tuple[int, int | None] | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

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
