"""A paginated JSON API on loopback that checks the bearer token, throttles and fails on cue."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE_SIZE = 3


class FakeApi:
    """Serves `records` at /v1/contacts, sorted by (updated_at, id), filtered by updated_since.

    Paging follows the query: `page`+`per_page`, `offset`+`limit`, else an opaque `cursor` with
    `meta.next_cursor` (page size PAGE_SIZE). `script` holds canned failures, served first.
    """

    def __init__(self, token: str = "s3cret-token") -> None:
        self.token = token
        self.records: list[dict] = []
        self.script: list[tuple[int, dict[str, str]] | None] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(
        self, status: int, times: int = 1, retry_after: str | None = None, after: int = 0
    ) -> None:
        """Answer `times` requests with `status`, once `after` more requests have succeeded."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.script.extend([None] * after + [(status, headers)] * times)

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _select(self, query: dict[str, str]) -> list[dict]:
        rows = sorted(self.records, key=lambda r: (r.get("updated_at") or "", str(r.get("id"))))
        since = query.get("updated_since")
        if since:
            floor = datetime.fromisoformat(since)
            rows = [r for r in rows if datetime.fromisoformat(r["updated_at"]) >= floor]
        return rows

    def _page(self, query: dict[str, str]) -> dict:
        rows = self._select(query)
        if "page" in query:
            size = int(query["per_page"])
            start = (int(query["page"]) - 1) * size
            return {"data": rows[start : start + size]}
        if "offset" in query:
            start, size = int(query["offset"]), int(query["limit"])
            return {"data": rows[start : start + size]}
        start = int(query.get("cursor") or 0)
        end = start + PAGE_SIZE
        return {
            "data": rows[start:end],
            "meta": {"next_cursor": str(end) if end < len(rows) else None},
        }

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict, headers: dict[str, str] | None = None):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                parts = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                with api.lock:
                    api.requests.append(
                        {"path": parts.path, "query": query, "auth": self.headers["Authorization"]}
                    )
                    scripted = api.script.pop(0) if api.script else None
                if self.headers["Authorization"] != f"Bearer {api.token}":
                    return self._send(401, {"error": "bad token"})
                if scripted:
                    status, headers = scripted
                    return self._send(status, {"error": "scripted failure"}, headers)
                if parts.path != "/v1/contacts":
                    return self._send(404, {"error": "no such endpoint"})
                with api.lock:
                    body = api._page(query)
                return self._send(200, body)

        return Handler
