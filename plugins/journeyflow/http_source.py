"""Read a paginated JSON API: bearer auth, cursor/page/offset paging, retries on 429 and 5xx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from journeyflow.connections import HttpCredentials, http_credentials
from journeyflow.readers import SourceRecord, coerce_value
from journeyflow.source_state import Window
from journeyflow.sources import HttpOptions, SourceSpec

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


class HttpSourceError(RuntimeError):
    """The API refused or kept failing a request; the message names the URL and the status."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _describe(request_url: str, params: dict[str, str]) -> str:
    return str(httpx.URL(request_url, params=params))


def get_json(
    client: httpx.Client, url: str, params: dict[str, str], options: HttpOptions, sleep: Sleep
) -> Any:
    """GET one page; retry 429/5xx and network errors with backoff, fail at once on other 4xx."""
    attempts = options.max_retries + 1
    target = _describe(url, params)
    for attempt in range(1, attempts + 1):
        try:
            response = client.get(url, params=params)
        except httpx.TransportError as error:
            problem, wait = f"{type(error).__name__}: {error}", None
        else:
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError as error:
                    raise HttpSourceError(f"GET {target}: expected a JSON body: {error}") from error
            if not _retryable(response.status_code):
                raise HttpSourceError(
                    f"GET {target}: HTTP {response.status_code} {response.reason_phrase}"
                    f" (not retried): {response.text[:300]}"
                )
            problem = f"HTTP {response.status_code} {response.reason_phrase}"
            wait = retry_after_seconds(response.headers.get("Retry-After"))
        if attempt == attempts:
            raise HttpSourceError(
                f"GET {target}: {problem}, still failing after {attempts} attempts"
            )
        if wait is None:
            wait = options.backoff_seconds * 2 ** (attempt - 1)
        wait = min(wait, options.max_backoff_seconds)
        log.warning("GET %s: %s; retry %d of %d in %.1fs", target, problem, attempt,
                    options.max_retries, wait)  # fmt: skip
        sleep(wait)
    raise AssertionError("unreachable")


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path (`data.items`); the document itself for an empty path."""
    value = document
    for part in filter(None, path.split(".")):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _page_records(page: Any, options: HttpOptions, target: str) -> list[Any]:
    records = dig(page, options.records_path)
    if not isinstance(records, list):
        where = f"at {options.records_path!r}" if options.records_path else "as the body"
        raise HttpSourceError(f"GET {target}: expected a JSON array of records {where}")
    return records


def iterate_pages(
    client: httpx.Client, url: str, params: dict[str, str], options: HttpOptions, sleep: Sleep
) -> Iterator[tuple[str, list[Any]]]:
    """(page URL, records) for every page, following the declared pagination."""
    paging = options.pagination
    params = dict(params)
    position = paging.first_page if paging.type == "page" else 0
    seen_cursors: set[str] = set()
    while True:
        if paging.type in ("page", "offset"):
            name = paging.page_param if paging.type == "page" else paging.offset_param
            params[name] = str(position)
            params[paging.size_param] = str(paging.page_size)
        target = _describe(url, params)
        page = get_json(client, url, params, options, sleep)
        records = _page_records(page, options, target)
        yield target, records
        if paging.type == "none":
            return
        if paging.type == "cursor":
            cursor = dig(page, paging.next_cursor_path)
            if cursor in (None, "") or not records:
                return
            if str(cursor) in seen_cursors:
                raise HttpSourceError(f"GET {target}: the API returned cursor {cursor!r} twice")
            seen_cursors.add(str(cursor))
            params[paging.cursor_param] = str(cursor)
            continue
        if len(records) < paging.page_size:
            return
        position += 1 if paging.type == "page" else len(records)


def _changed_at(spec: SourceSpec, record: Any) -> datetime | None:
    if not spec.updated_at_column or not isinstance(record, dict):
        return None
    try:
        return coerce_value(spec.column(spec.updated_at_column), record.get(spec.updated_at_column))
    except ValueError:
        return None  # typing rejects it with the reason


def request_target(spec: SourceSpec, credentials: HttpCredentials) -> str:
    url = spec.http.url
    return url if url.startswith(("http://", "https://")) else credentials.base_url + url


def fetch_records(
    spec: SourceSpec, window: Window, sleep: Sleep = time.sleep
) -> Iterator[SourceRecord]:
    """Every record the API returns for the window; records changed outside it are left out."""
    options = spec.http
    credentials = (
        http_credentials(options.connection) if options.connection else HttpCredentials("", None)
    )
    headers = {"Accept": "application/json", "User-Agent": "journeyflow"}
    if credentials.token:
        headers["Authorization"] = f"Bearer {credentials.token}"
    params = dict(options.params)
    if options.since_param and window.since is not None:
        params[options.since_param] = window.since.isoformat()
    number = 0
    outside = 0
    with httpx.Client(headers=headers, timeout=options.timeout_seconds) as client:
        url = request_target(spec, credentials)
        for target, records in iterate_pages(client, url, params, options, sleep):
            for record in records:
                number += 1
                changed_at = _changed_at(spec, record)
                if changed_at is not None and not window.contains(changed_at):
                    outside += 1
                    continue
                text = json.dumps(record, ensure_ascii=False)
                yield SourceRecord(number, text, record, text, target)
    if outside:
        log.info("%s: %d records changed outside %s left for their own interval", spec.name,
                 outside, window.describe())  # fmt: skip
