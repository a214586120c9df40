"""erase_person on a real pipeline run: no trace left anywhere, one suppression, no comeback."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from tests.conftest import cloned_database, fresh_database
from tests.integration.conftest import LOGICAL_DATE, TEST_API_KEY, load_dag, point_pipeline_at

pytestmark = pytest.mark.integration

SUPPRESSIONS_PATH = "/v3/asm/suppressions/global"
BYSTANDER = "bystander@example.net"

# a person with every kind of identifier and history the demo data has
PERSON_SQL = """
select d.profile_id
from marts.dim_customers d
where d.phone is not null and d.user_id is not null and d.crm_id is not null
  and d.anonymous_ids like '%,%' and d.order_count > 0
  and exists (select 1 from activation.campaign_sends s
              where s.profile_id = d.profile_id and s.status = 'sent')
  and exists (select 1 from marts.fct_touchpoints t
              where t.profile_id = d.profile_id and t.source = 'sendgrid')
  and exists (select 1 from marts.fct_touchpoints t
              where t.profile_id = d.profile_id and t.source = 'support')
order by d.profile_id
limit 1
"""

RAW_SPELLINGS_SQL = """
select email from raw.web_events where lower(trim(email)) = any(%(emails)s)
union select customer_email from raw.orders where lower(trim(customer_email)) = any(%(emails)s)
union select requester_email from raw.support_tickets
      where lower(trim(requester_email)) = any(%(emails)s)
union select email from raw.email_events where lower(trim(email)) = any(%(emails)s)
union select email from raw.crm_contacts where crm_id = any(%(crm_ids)s)
union select phone from raw.crm_contacts where crm_id = any(%(crm_ids)s)
"""


def _text_columns(db) -> list[tuple[str, str, str]]:
    return db.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t"
        " on t.table_schema = c.table_schema and t.table_name = c.table_name"
        " where t.table_type = 'BASE TABLE'"
        " and c.table_schema not in ('pg_catalog', 'information_schema')"
        " and c.table_schema not like 'pg\\_%%'"
        " and c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')"
    ).fetchall()


def traces(db, needles: set[str]) -> dict[str, int]:
    """Rows per table.column whose text mentions any needle (case-insensitive), everywhere."""
    patterns = [f"%{needle.lower()}%" for needle in needles]
    found = {}
    for schema, table, column in _text_columns(db):
        count = db.execute(
            f'select count(*) from "{schema}"."{table}" where lower("{column}"::text) like any(%s)',
            (patterns,),
        ).fetchone()[0]
        if count:
            found[f"{schema}.{table}.{column}"] = count
    return found


def erased_at_load(db) -> int:
    """Records the latest pipeline run's extraction dropped because their person was erased."""
    (tasks,) = db.execute(
        "select tasks from ops.pipeline_runs order by ended_at desc limit 1"
    ).fetchone()
    total, pending = 0, [tasks]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            total += int(node.get("rows_erased") or 0)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return total


def suppression_requests(sink) -> list[dict]:
    return [r for r in sink.requests if r["path"] == SUPPRESSIONS_PATH]


@pytest.fixture(scope="module")
def world(server_url, airflow_db, demo_files, built_warehouse):
    """A private copy of a warehouse after one complete pipeline run, and a SendGrid sink."""
    from journeyflow.sendgrid_sink import SendGridSink

    data_dir, _ = demo_files
    assert built_warehouse.state == "success"
    with (
        cloned_database(server_url, built_warehouse.url, "erase") as url,
        SendGridSink() as sink,
        pytest.MonkeyPatch.context() as patch,
        psycopg.connect(url, autocommit=True) as db,
    ):
        point_pipeline_at(patch, url, data_dir, sink.url)
        yield {
            "db": db,
            "sink": sink,
            "sent_by_the_run": built_warehouse.messages,
            "pipeline": load_dag("journey_pipeline"),
            "eraser": load_dag("erase_person"),
        }


@pytest.fixture(scope="module")
def person(world):
    """The chosen person's identifiers, profile ids and raw spellings, before the erasure."""
    db = world["db"]
    row = db.execute(PERSON_SQL).fetchone()
    assert row, "the demo data has no person with every kind of identifier and history"
    (profile_id,) = row
    identifiers = db.execute(
        "select identifier_type, identifier_value from intermediate.int_identifiers_resolved"
        " where profile_id = %s",
        (profile_id,),
    ).fetchall()
    by_type: dict[str, set[str]] = {}
    for identifier_type, value in identifiers:
        by_type.setdefault(identifier_type, set()).add(value)
    assert {"email", "phone", "user_id", "crm_id", "anonymous_id"} <= set(by_type)
    assert len(by_type["anonymous_id"]) >= 2
    spellings = {
        value
        for (value,) in db.execute(
            RAW_SPELLINGS_SQL,
            {"emails": sorted(by_type["email"]), "crm_ids": sorted(by_type["crm_id"])},
        ).fetchall()
        if value
    }
    sent_to = {
        email
        for (email,) in db.execute(
            "select email from activation.campaign_sends where profile_id = %s", (profile_id,)
        ).fetchall()
    }
    values = {value for group in by_type.values() for value in group}
    needles = values | spellings | sent_to | {profile_id}
    before = traces(db, needles)
    # dim_customers is a view over int_customer_profiles: the rows live there
    assert {"raw.crm_contacts._record", "intermediate.int_customer_profiles.emails"} <= set(
        before
    ), before
    assert len({column.rsplit(".", 1)[0] for column in before}) >= 15, before
    return {
        "profile_id": profile_id,
        "by_type": by_type,
        "needles": needles,
        "email": sorted(by_type["email"])[0],
        "messages_before": [m for m in world["sent_by_the_run"] if m[0] in sent_to],
    }


@pytest.fixture(scope="module")
def erased(world, person):
    """Traces planted where only a generic scan finds them, then one erase_person run."""
    db = world["db"]
    email = person["email"]
    batch = db.execute("select _batch_id from raw.orders limit 1").fetchone()[0]
    db.execute(
        "insert into raw.orders__rejected (_batch_id, _source_file, _line_number, _reason,"
        " _raw_text, _loaded_at, _source) values (%s, 'orders/orders.csv', 100000,"
        " 'planted', %s, now(), 'orders')",
        (batch, f"ORD-X,{email.upper()},n/a,USD,completed,2026-10-01T00:00:00Z"),
    )
    planted = db.execute(
        "update dq.validation_results set unexpected_sample = %s::jsonb"
        " where ctid = (select min(ctid) from dq.validation_results) returning run_id",
        (f'["{email}", "{BYSTANDER}"]',),
    ).fetchone()
    assert planted
    conf = {"identifier": f"  {email.upper()} "}
    state = str(world["eraser"].test(run_conf=conf).state)
    return {"state": state, "conf": conf}


def test_erase_person_succeeds(erased):
    assert erased["state"] == "success"


def test_no_trace_of_the_person_remains_anywhere(world, person, erased):
    assert traces(world["db"], person["needles"]) == {}


def test_other_people_stay(world, person, erased):
    db = world["db"]
    assert db.execute("select count(*) from marts.dim_customers").fetchone()[0] > 0
    sample = db.execute(
        "select unexpected_sample from dq.validation_results where unexpected_sample::text like %s",
        (f"%{BYSTANDER}%",),
    ).fetchone()
    assert sample == (["[erased]", BYSTANDER],)


def test_tombstones_hold_digests_of_every_identifier(world, person, erased):
    digests = {
        (t, d)
        for t, d in world["db"]
        .execute("select identifier_type, identifier_digest from activation.erased_identifiers")
        .fetchall()
    }
    for identifier_type, values in person["by_type"].items():
        for value in values:
            assert (identifier_type, hashlib.sha256(value.encode()).hexdigest()) in digests
    profile = hashlib.sha256(person["profile_id"].encode()).hexdigest()
    assert ("profile_id", profile) in digests


def test_the_audit_keeps_a_hash_and_the_rows_per_table(world, person, erased):
    row = (
        world["db"]
        .execute(
            "select identifier_type, identifier_digest, rows_affected, erased_at, suppressed_at"
            " from ops.erasure_requests"
        )
        .fetchone()
    )
    identifier_type, identifier_digest, rows_affected, erased_at, suppressed_at = row
    assert identifier_type == "email"
    key = f"email:{person['email']}".encode()
    assert identifier_digest == hashlib.sha256(key).hexdigest()
    assert erased_at is not None and suppressed_at is not None
    for table in (
        "raw.crm_contacts",
        "raw.orders",
        "raw.orders__rejected",
        "raw.web_events",
        "raw.support_tickets",
        "raw.email_events",
        "intermediate.int_identity_edges",
        "intermediate.int_identifiers_resolved",
        "intermediate.int_customer_profiles",  # dim_customers is a view over it
        "intermediate.int_touchpoints_unioned",  # fct_touchpoints is a view over it
        "activation.campaign_sends",
        "activation.campaign_decisions",
        "dq.validation_results",
    ):
        assert rows_affected.get(table, 0) > 0, table


def test_sendgrid_got_the_suppression_once(world, person, erased):
    requests = suppression_requests(world["sink"])
    assert len(requests) == 1
    assert person["email"] in requests[0]["body"]["recipient_emails"]


def test_a_second_request_for_the_person_sends_nothing_again(world, person, erased):
    state = str(world["eraser"].test(run_conf=erased["conf"]).state)
    assert state == "success"
    assert len(suppression_requests(world["sink"])) == 1
    assert traces(world["db"], person["needles"]) == {}


def test_reloading_the_source_files_does_not_bring_the_person_back(world, person, erased):
    db = world["db"]
    assert person["messages_before"], "the person had been sent a campaign"
    db.execute("delete from raw._load_batches")  # every source file is read again, whole
    assert str(world["pipeline"].test(logical_date=LOGICAL_DATE).state) == "success"
    assert db.execute("select count(*) from raw.crm_contacts").fetchone()[0] > 0
    assert traces(db, person["needles"]) == {}
    assert erased_at_load(db) > 0
    # the module's sink has seen every send since the warehouse was copied (the person's
    # earlier messages went to the run that built it): the reload sent the person nothing
    sent_again = [m for m in world["sink"].messages() if m[0] in person["needles"]]
    assert sent_again == []


@pytest.fixture()
def outbox(server_url):
    """A fresh warehouse with the erasure tables, a SendGrid sink and a real client for it."""
    from journeyflow import erasure, sendgrid_api
    from journeyflow.sendgrid_sink import SendGridSink

    with (
        fresh_database(server_url, "erase_outbox") as url,
        SendGridSink() as sink,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        erasure.ensure_erasure_tables(conn)
        yield conn, sink, sendgrid_api.make_client(TEST_API_KEY, sink.url)


def _queue(conn, *emails: str) -> None:
    from journeyflow.erasure_requests import enqueue_suppressions

    enqueue_suppressions(conn, "request-1", list(emails))


def test_throttled_suppressions_are_retried_and_sent_once(outbox):
    from journeyflow.erasure_requests import suppress_pending

    conn, sink, client = outbox
    _queue(conn, "ann@example.com", "ann.work@example.com")
    sink.fail_next(2, status=429, retry_after=0, path=SUPPRESSIONS_PATH)
    waits = []
    assert suppress_pending(conn, client, sleep=waits.append) == 2
    assert waits == [0.0, 0.0]
    [request] = suppression_requests(sink)
    recipients = sorted(request["body"]["recipient_emails"])
    assert recipients == ["ann.work@example.com", "ann@example.com"]
    rows = conn.execute(
        "select status, email, attempts from activation.erasure_suppressions"
    ).fetchall()
    assert rows == [("suppressed", None, 1), ("suppressed", None, 1)]
    assert suppress_pending(conn, client, sleep=waits.append) == 0
    assert len(suppression_requests(sink)) == 1


def test_a_refused_suppression_stays_queued_with_the_error(outbox):
    from python_http_client.exceptions import HTTPError

    from journeyflow.erasure_requests import suppress_pending

    conn, sink, client = outbox
    _queue(conn, "ann@example.com")
    sink.fail_next(1, status=400, retry_after=None, path=SUPPRESSIONS_PATH)
    with pytest.raises(HTTPError):
        suppress_pending(conn, client, sleep=lambda seconds: None)
    status, error = conn.execute(
        "select status, error from activation.erasure_suppressions"
    ).fetchone()
    assert status == "pending" and error.startswith("400")
    assert suppress_pending(conn, client, sleep=lambda seconds: None) == 1
    assert len(suppression_requests(sink)) == 1


def test_a_bare_value_that_fits_two_people_needs_its_type_and_others_stay(outbox):
    from journeyflow.erasure_identifiers import ErasureRequestError, phone_rules
    from journeyflow.erasure_requests import tombstone_and_erase
    from tests.integration.conftest import ROOT

    conn, _, _ = outbox
    rules = phone_rules(ROOT / "dbt_project")
    with pytest.raises(ErasureRequestError, match="matches no profile; set identifier_type"):
        tombstone_and_erase(conn, "request-1", "6177136140", None, rules)
    conn.execute(
        "create schema intermediate; create table intermediate.int_identifiers_resolved"
        " (identifier_type text, identifier_value text, profile_id text,"
        " previous_profile_id text);"
        " insert into intermediate.int_identifiers_resolved values"
        " ('user_id', '6177136140', 'p_aaaaaaaaaaaaaaaa', null),"
        # the phone was split off p_a, which another person still holds
        " ('phone', '+16177136140', 'p_bbbbbbbbbbbbbbbb', 'p_aaaaaaaaaaaaaaaa')"
    )
    with pytest.raises(ErasureRequestError, match="matches 2 profiles"):
        tombstone_and_erase(conn, "request-1", "6177136140", None, rules)
    result = tombstone_and_erase(conn, "request-1", "(617) 713-6140", "phone", rules)
    assert result["profiles_erased"] == 1
    left = conn.execute("select identifier_value from intermediate.int_identifiers_resolved")
    assert left.fetchall() == [("6177136140",)]
