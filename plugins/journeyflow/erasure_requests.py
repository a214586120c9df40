"""The erase_person DAG's tasks: tombstone and erase a person, then suppress them in SendGrid."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg
from psycopg.types.json import Jsonb

from journeyflow import erasure, sendgrid_api
from journeyflow.erasure_identifiers import (
    ErasureRequestError,
    PhoneRules,
    digest,
    phone_rules,
    request_identifiers,
)
from journeyflow.settings import load_settings
from journeyflow.warehouse import connect

log = logging.getLogger(__name__)

SUPPRESSIONS = "activation.erasure_suppressions"
AUDIT = "ops.erasure_requests"
MAX_EMAILS_PER_REQUEST = 1000


def _audit_start(conn, request_id: str, requested, person: erasure.Person, tombstones: int):
    first = requested[0]
    conn.execute(
        f"insert into {AUDIT} (request_id, identifier_type, identifier_digest, tombstoned_at,"
        " profiles_erased, identifiers_tombstoned, emails_to_suppress)"
        " values (%s, %s, %s, now(), %s, %s, %s) on conflict (request_id) do update set"
        " tombstoned_at = excluded.tombstoned_at,"
        f" profiles_erased = greatest({AUDIT}.profiles_erased, excluded.profiles_erased),"
        f" identifiers_tombstoned = greatest({AUDIT}.identifiers_tombstoned,"
        " excluded.identifiers_tombstoned),"
        f" emails_to_suppress = greatest({AUDIT}.emails_to_suppress, excluded.emails_to_suppress)",
        (
            request_id,
            "/".join(sorted({i.type for i in requested})),
            erasure.audit_digest(first),
            len(person.profile_ids),
            tombstones,
            len(person.emails),
        ),
    )


def enqueue_suppressions(conn, request_id: str, emails: list[str]) -> None:
    """Queue addresses for SendGrid suppression; one already queued or sent is left as it is."""
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into {SUPPRESSIONS} (email_digest, email, request_id) values (%s, %s, %s)"
            " on conflict (email_digest) do nothing",
            [(digest(email), email, request_id) for email in emails],
        )


def _audit_erased(conn, request_id: str, affected: dict[str, int]) -> None:
    conn.execute(
        f"update {AUDIT} set erased_at = now(), rows_affected = rows_affected || %s"
        " where request_id = %s",
        (Jsonb(affected), request_id),
    )


def tombstone_and_erase(
    conn: psycopg.Connection,
    request_id: str,
    identifier: object,
    identifier_type: str | None,
    rules: PhoneRules,
) -> dict:
    """Two transactions: tombstones, suppression outbox and audit first; then the erasure."""
    requested = request_identifiers(identifier, identifier_type, rules)
    with conn.transaction():
        erasure.ensure_erasure_tables(conn)
        requested = erasure.narrow_candidates(conn, requested)
        person = erasure.find_person(conn, requested)
        erasure.collect_spellings(conn, erasure.warehouse_tables(conn), person, rules)
        tombstones = erasure.write_tombstones(conn, person, request_id)
        enqueue_suppressions(conn, request_id, person.emails)
        _audit_start(conn, request_id, requested, person, tombstones)
    with conn.transaction():
        affected = erasure.erase_person(conn, person, rules)
        _audit_erased(conn, request_id, affected)
    log.info(
        "erasure %s: %d profile(s), %d tombstone(s), %d row(s) in %d table(s)",
        request_id,
        len(person.profile_ids),
        tombstones,
        sum(affected.values()),
        len(affected),
    )
    return {
        "request_id": request_id,
        "profiles_erased": len(person.profile_ids),
        "identifiers_tombstoned": tombstones,
        "emails_to_suppress": len(person.emails),
        "rows_affected": sum(affected.values()),
        "tables_affected": len(affected),
    }


def _pending(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        f"select email_digest, email from {SUPPRESSIONS} where status = 'pending'"
        f" order by created_at, email_digest limit {MAX_EMAILS_PER_REQUEST}"
    ).fetchall()


def post_suppressions(client, emails: list[str], sleep: Callable[[float], None] = time.sleep):
    """POST /v3/asm/suppressions/global with SendGrid's retries (429, 5xx, Retry-After)."""
    body = {"recipient_emails": emails}
    return sendgrid_api.with_retries(
        lambda: client.client.asm.suppressions._("global").post(request_body=body), sleep
    )


def suppress_pending(conn: psycopg.Connection, client, sleep=time.sleep) -> int:
    """Send every pending suppression once; on success keep only the address's digest."""
    sent = 0
    while pending := _pending(conn):
        digests = [row[0] for row in pending]
        with conn.transaction():
            conn.execute(
                f"update {SUPPRESSIONS} set attempts = attempts + 1 where email_digest = any(%s)",
                (digests,),
            )
        try:
            post_suppressions(client, [row[1] for row in pending], sleep)
        except Exception as error:
            with conn.transaction():
                conn.execute(
                    f"update {SUPPRESSIONS} set error = %s where email_digest = any(%s)",
                    (sendgrid_api.error_text(error), digests),
                )
            raise
        with conn.transaction():
            conn.execute(
                f"update {SUPPRESSIONS} set status = 'suppressed', email = null, error = null,"
                " suppressed_at = now() where email_digest = any(%s)",
                (digests,),
            )
            conn.execute(
                f"update {AUDIT} set suppressed_at = now() where request_id in"
                f" (select request_id from {SUPPRESSIONS} where email_digest = any(%s))",
                (digests,),
            )
        sent += len(pending)
    return sent


# --- task entry points ------------------------------------------------------------------------


def _mask_in_task_logs(value: object) -> None:
    """Register the identifier with Airflow's log masker: task logs never show it."""
    from airflow.sdk.log import mask_secret

    if isinstance(value, str) and value.strip():
        mask_secret(value)
        mask_secret(value.strip())


def erase_person(request_id: str, conf: dict) -> dict:
    """Task: validate the request, tombstone the person, erase them from the warehouse."""
    settings = load_settings()
    unknown = set(conf) - {"identifier", "identifier_type"}
    if unknown:
        raise ErasureRequestError(f"unknown conf key(s): {', '.join(sorted(unknown))}")
    rules = phone_rules(settings.dbt_project_dir)
    _mask_in_task_logs(conf.get("identifier"))
    with connect(settings.warehouse_url, autocommit=True) as conn:
        return tombstone_and_erase(
            conn, request_id, conf.get("identifier"), conf.get("identifier_type") or None, rules
        )


def suppress_in_sendgrid() -> dict:
    """Task: add every pending erased address to SendGrid's global suppressions."""
    settings = load_settings()
    with connect(settings.warehouse_url, autocommit=True) as conn:
        erasure.ensure_erasure_tables(conn)
        if not _pending(conn):
            return {"suppressed": 0}
        api_key = sendgrid_api.api_key_from_connection(settings.sendgrid_conn_id)
        client = sendgrid_api.make_client(api_key, settings.sendgrid_host)
        suppressed = suppress_pending(conn, client)
    log.info("SendGrid global suppressions added: %d", suppressed)
    return {"suppressed": suppressed}
