"""Identity resolution on real PostgreSQL and dbt: graph cases, guardrails, stable ids, merges.

Every case lives in one warehouse under its own identifier prefix. The first dbt build loads
the cases, the second adds a late link (and a new visitor) incrementally; then the ids are
compared with a --full-refresh rebuild and with a build from scratch in a fresh database.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from journeyflow import activation, identity, loading
from journeyflow.dbt_runner import DbtFailure, run_dbt
from journeyflow.settings import load_settings
from journeyflow.sources import load_sources
from journeyflow.warehouse import ensure_database, with_database

pytestmark = pytest.mark.integration

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
START = datetime(2025, 3, 1, 9, tzinfo=UTC)
# the project's default blocklist plus a shop-floor kiosk: the blocklist is configurable
BLOCKLIST = ["test@test.com", "null", "none", "0000000000", "", "kiosk-01"]
VARS = ["--vars", json.dumps({"identity_blocklist": BLOCKLIST})]


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def web(event_id, anonymous_id, user_id=None, email=None, minutes=0, event="page_view"):
    return ("web_events", (event_id, anonymous_id, user_id, email, event, at(minutes)))


def crm(crm_id, user_id=None, email=None, phone=None, minutes=0):
    return ("crm_contacts", (crm_id, user_id, email, phone, "US", at(minutes)))


def order(order_id, email, minutes=0):
    return ("orders", (order_id, email, 42.0, "USD", "completed", at(minutes)))


COLUMNS = {
    "web_events": ["event_id", "anonymous_id", "user_id", "email", "event", "ts"],
    "crm_contacts": ["crm_id", "user_id", "email", "phone", "country", "updated_at"],
    "orders": ["order_id", "customer_email", "amount", "currency", "status", "ts"],
}

LONG_CHAIN = [
    row
    for i in range(1, 10)
    for row in (
        web(f"long-{i}a", f"long-d{i}", email=f"long-e{i}@example.com", minutes=100 + 2 * i),
        web(f"long-{i}b", f"long-d{i + 1}", email=f"long-e{i}@example.com", minutes=101 + 2 * i),
    )
] + [web("long-10a", "long-d10", email="long-e10@example.com", minutes=130)]

FIRST_LOAD = [
    # chain: device -> e-mail -> device -> e-mail
    web("chain-1", "chain-d1", email="chain-e1@example.com", minutes=0, event="signup"),
    web("chain-2", "chain-d2", email="chain-e1@example.com", minutes=10, event="login"),
    web("chain-3", "chain-d2", email="chain-e2@example.com", minutes=20, event="signup"),
    # fan-in: three devices log in to one account
    web("fanin-1", "fanin-d1", "fanin-u", minutes=30, event="login"),
    web("fanin-2", "fanin-d2", "fanin-u", minutes=31, event="login"),
    web("fanin-3", "fanin-d3", "fanin-u", minutes=32, event="login"),
    # fan-out: one device signs three e-mails up
    web("fanout-0", "fanout-d", minutes=39),
    web("fanout-1", "fanout-d", email="fanout-e1@example.com", minutes=40, event="signup"),
    web("fanout-2", "fanout-d", email="fanout-e2@example.com", minutes=41, event="signup"),
    web("fanout-3", "fanout-d", email="fanout-e3@example.com", minutes=42, event="signup"),
    # diamond: device-user, device-email, crm-user, crm-email
    web("diamond-1", "diamond-d", "diamond-u", minutes=50, event="login"),
    web("diamond-2", "diamond-d", email="diamond-e@example.com", minutes=51, event="signup"),
    crm("diamond-c", "diamond-u", "diamond-e@example.com", minutes=52),
    # disjoint: two people who never meet
    web("disjoint-1", "disjoint-d1", "disjoint-u1", minutes=60, event="login"),
    web("disjoint-2", "disjoint-d2", "disjoint-u2", minutes=61, event="login"),
    # long chain of 20 identifiers
    *LONG_CHAIN,
    # late link, part 1: anonymous browsing, and separately a known customer
    web("late-1", "late-d", minutes=200),
    web("late-2", "late-d", minutes=201, event="product_view"),
    web("late-3", "late-d2", "late-u", "late-e@example.com", minutes=210, event="signup"),
    order("late-o1", "late-e@example.com", minutes=215),
    # blocklisted values: a placeholder e-mail and a kiosk shared by two people
    web("block-1", "block-d1", "block-u1", "TEST@test.com", minutes=300, event="signup"),
    web("block-2", "block-d2", "block-u2", "test@test.com ", minutes=301, event="signup"),
    web("block-3", "kiosk-01", "block-u1", minutes=302, event="login"),
    web("block-4", "kiosk-01", "block-u2", minutes=303, event="login"),
    # two accounts through one shared device (u1 uses it three times, u2 once)
    web("shared-0", "shared-d2", "shared-u2", "shared-e2@example.com", minutes=390, event="login"),
    web("shared-1", "shared-d", "shared-u1", "shared-e1@example.com", minutes=400, event="login"),
    web("shared-2", "shared-d", "shared-u1", "shared-e1@example.com", minutes=401, event="login"),
    web("shared-3", "shared-d", "shared-u1", "shared-e1@example.com", minutes=402, event="login"),
    web("shared-4", "shared-d", "shared-u2", "shared-e2@example.com", minutes=403, event="login"),
]
LATE_LOAD = [
    # late link, part 2: the anonymous device logs in to the customer's account
    web("late-link", "late-d", "late-u", minutes=220, event="login"),
    # an unrelated new visitor
    web("new-1", "new-d", minutes=230),
]


def profile_of_key(identifier_key: str) -> str:
    """The documented profile id: 'p_' || left(md5(survivor type:value), 16)."""
    return "p_" + hashlib.md5(identifier_key.encode()).hexdigest()[:16]


def write_raw(url: str, rows: list[tuple[str, tuple]], batch: str) -> None:
    specs = load_sources(load_settings().sources_file)
    with psycopg.connect(url) as conn:
        for spec in specs.values():
            loading.ensure_raw_schema(conn, spec)
        for line, (table, values) in enumerate(rows, start=1):
            columns = [*COLUMNS[table], "_batch_id", "_source_file", "_line_number"]
            columns += ["_loaded_at", "_record"]
            conn.execute(
                f"insert into raw.{table} ({', '.join(columns)})"
                f" values ({', '.join(['%s'] * len(columns))})",
                (*values, batch, f"{table}/{batch}", line, datetime.now(UTC), "{}"),
            )


def build(url: str, *extra: str) -> str:
    return run_dbt(["build", "--exclude", "tag:reporting", *VARS, *extra], DBT_PROJECT, url)


def profiles(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "select identifier_key, profile_id from intermediate.int_identifiers_resolved"
            ).fetchall()
        )


def new_database(server_url: str) -> str:
    url = with_database(server_url, f"journey_test_identity_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def graph(server_url):
    """Two incremental builds; what the warehouse looked like after each."""
    url = new_database(server_url)
    try:
        write_raw(url, FIRST_LOAD, "first")
        build(url)
        first = profiles(url)
        before_late = profile_of_key("anonymous_id:late-d2")
        with psycopg.connect(url, autocommit=True) as conn:
            activation.ensure_activation_schema(conn)
            conn.execute(
                "insert into activation.campaign_sends (send_id, campaign_id, profile_id,"
                " trigger_window, email, template_id, status, run_id)"
                " values ('s-late', 'welcome_v1', %s, '2025-03-01', 'late-e@example.com',"
                " 'tpl', 'sent', 'run-1')",
                (before_late,),
            )
        write_raw(url, LATE_LOAD, "late")
        output = build(url)
        yield {"url": url, "first": first, "second": profiles(url), "output": output}
    finally:
        drop_database(server_url, url)


@pytest.fixture()
def db(graph):
    with psycopg.connect(graph["url"], autocommit=True) as conn:
        yield conn


def members(graph: dict, prefix: str, key: str = "second") -> dict[str, set[str]]:
    """Profile -> identifier keys, for the identifiers of one case."""
    grouped: dict[str, set[str]] = {}
    for identifier, profile_id in graph[key].items():
        if identifier.split(":", 1)[1].startswith(prefix):
            grouped.setdefault(profile_id, set()).add(identifier)
    return grouped


def test_chain_is_one_profile(graph):
    assert members(graph, "chain-") == {
        profile_of_key("anonymous_id:chain-d1"): {
            "anonymous_id:chain-d1",
            "anonymous_id:chain-d2",
            "email:chain-e1@example.com",
            "email:chain-e2@example.com",
        }
    }


def test_fan_in_is_one_profile(graph):
    assert members(graph, "fanin-") == {
        profile_of_key("anonymous_id:fanin-d1"): {
            "anonymous_id:fanin-d1",
            "anonymous_id:fanin-d2",
            "anonymous_id:fanin-d3",
            "user_id:fanin-u",
        }
    }


def test_fan_out_is_one_profile(graph):
    assert members(graph, "fanout-") == {
        profile_of_key("anonymous_id:fanout-d"): {
            "anonymous_id:fanout-d",
            "email:fanout-e1@example.com",
            "email:fanout-e2@example.com",
            "email:fanout-e3@example.com",
        }
    }


def test_diamond_is_one_profile(graph):
    assert members(graph, "diamond-") == {
        profile_of_key("anonymous_id:diamond-d"): {
            "anonymous_id:diamond-d",
            "user_id:diamond-u",
            "email:diamond-e@example.com",
            "crm_id:diamond-c",
        }
    }


def test_disjoint_people_stay_apart(graph):
    assert members(graph, "disjoint-") == {
        profile_of_key("anonymous_id:disjoint-d1"): {
            "anonymous_id:disjoint-d1",
            "user_id:disjoint-u1",
        },
        profile_of_key("anonymous_id:disjoint-d2"): {
            "anonymous_id:disjoint-d2",
            "user_id:disjoint-u2",
        },
    }


def test_long_chain_of_twenty_is_one_profile(graph, db):
    chain = members(graph, "long-")
    assert list(chain) == [profile_of_key("anonymous_id:long-d1")]
    assert len(chain[profile_of_key("anonymous_id:long-d1")]) == 20
    sizes = db.execute(
        "select distinct cluster_size from intermediate.int_identifiers_resolved"
        " where identifier_value like 'long-%'"
    ).fetchall()
    assert sizes == [(20,)]


def test_blocklisted_values_never_link(graph):
    assert members(graph, "block-") == {
        profile_of_key("anonymous_id:block-d1"): {"anonymous_id:block-d1", "user_id:block-u1"},
        profile_of_key("anonymous_id:block-d2"): {"anonymous_id:block-d2", "user_id:block-u2"},
    }
    for blocked in ("email:test@test.com", "anonymous_id:kiosk-01"):
        assert blocked not in graph["second"]


def test_two_accounts_on_one_shared_device_stay_apart(graph, db):
    assert members(graph, "shared-") == {
        # the device goes with the account that used it more (3 logins against 1)
        profile_of_key("anonymous_id:shared-d"): {
            "anonymous_id:shared-d",
            "user_id:shared-u1",
            "email:shared-e1@example.com",
        },
        profile_of_key("anonymous_id:shared-d2"): {
            "anonymous_id:shared-d2",
            "user_id:shared-u2",
            "email:shared-e2@example.com",
        },
    }
    cut = db.execute(
        "select left_identifier_key, right_identifier_key from intermediate.int_identity_links_cut"
        " order by 1, 2"
    ).fetchall()
    assert cut == [
        ("anonymous_id:shared-d", "email:shared-e2@example.com"),
        ("anonymous_id:shared-d", "user_id:shared-u2"),
    ]


def test_late_link_merges_two_existing_profiles(graph):
    anonymous = profile_of_key("anonymous_id:late-d")
    customer = profile_of_key("anonymous_id:late-d2")
    assert members(graph, "late-", key="first") == {
        anonymous: {"anonymous_id:late-d"},
        customer: {"anonymous_id:late-d2", "user_id:late-u", "email:late-e@example.com"},
    }
    # the older identifier (anonymous browsing came first) survives
    assert members(graph, "late-") == {
        anonymous: {
            "anonymous_id:late-d",
            "anonymous_id:late-d2",
            "user_id:late-u",
            "email:late-e@example.com",
        }
    }


def test_merge_log_names_the_late_link(graph, db):
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        log = cur.execute(
            "select previous_profile_id, surviving_profile_id, rule, identifiers_moved,"
            " linking_record_id, linking_left_identifier, linking_right_identifier"
            " from marts.identity_merge_log"
        ).fetchall()
    assert log == [
        {
            "previous_profile_id": profile_of_key("anonymous_id:late-d2"),
            "surviving_profile_id": profile_of_key("anonymous_id:late-d"),
            "rule": "identifier_link",
            "identifiers_moved": 3,
            "linking_record_id": "web:late-link",
            "linking_left_identifier": "anonymous_id:late-d",
            "linking_right_identifier": "user_id:late-u",
        }
    ]


def test_history_is_restitched_into_built_tables(graph, db):
    survivor = profile_of_key("anonymous_id:late-d")
    touchpoints = db.execute(
        "select touchpoint_id, profile_id from marts.fct_touchpoints"
        " where touchpoint_id in ('web:late-1', 'web:late-2', 'web:late-3', 'web:late-link',"
        " 'order:late-o1') order by 1"
    ).fetchall()
    assert {profile for _, profile in touchpoints} == {survivor}
    assert len(touchpoints) == 5
    stages = db.execute(
        "select stage, entered_at from marts.fct_customer_stage_history"
        " where profile_id = %s order by spell_number",
        (survivor,),
    ).fetchall()
    # the journey starts with the anonymous visit, not with the login
    assert stages[0] == ("awareness", at(200))
    gone = db.execute(
        "select count(*) from marts.dim_customers where profile_id = %s",
        (profile_of_key("anonymous_id:late-d2"),),
    ).fetchone()[0]
    assert gone == 0
    customer = db.execute(
        "select touchpoint_count, order_count, anonymous_ids from marts.dim_customers"
        " where profile_id = %s",
        (survivor,),
    ).fetchone()
    assert customer == (5, 1, "late-d,late-d2")


def test_incremental_run_rewrites_only_affected_profiles(graph, db):
    assert len(graph["second"]) == len(graph["first"]) + 1
    rewritten = db.execute(
        "select identifier_key from intermediate.int_identifiers_resolved"
        " where resolved_at = (select max(resolved_at) from intermediate.int_identifiers_resolved)"
        " order by 1"
    ).fetchall()
    assert [key for (key,) in rewritten] == [
        "anonymous_id:late-d",
        "anonymous_id:late-d2",
        "anonymous_id:new-d",
        "email:late-e@example.com",
        "user_id:late-u",
    ]
    assert "identity resolution (incremental): 5 identifiers rewritten" in graph["output"]


def test_outbox_follows_the_surviving_profile(graph, db):
    moved = identity.follow_profile_merges(db)
    assert moved == {"campaign_decisions": 0, "campaign_sends": 1}
    row = db.execute(
        "select profile_id from activation.campaign_sends where send_id = 's-late'"
    ).fetchone()
    assert row == (profile_of_key("anonymous_id:late-d"),)
    assert identity.follow_profile_merges(db) == {"campaign_decisions": 0, "campaign_sends": 0}
    # the decision step's outbox insert for the survivor and this trigger window is a no-op now
    key = ("welcome_v1", profile_of_key("anonymous_id:late-d"), date(2025, 3, 1))
    inserted = db.execute(
        "insert into activation.campaign_sends (send_id, campaign_id, profile_id, trigger_window,"
        " email, template_id, status, run_id) values (%s, %s, %s, %s, 'late-e@example.com',"
        " 'tpl', 'pending', 'run-2') on conflict do nothing",
        (activation.send_id_for(*key), *key),
    ).rowcount
    assert inserted == 0


def test_full_refresh_keeps_every_profile_id(graph):
    build(graph["url"], "--full-refresh")
    assert profiles(graph["url"]) == graph["second"]


def test_build_from_scratch_gives_the_same_profile_ids(graph, server_url):
    url = new_database(server_url)
    try:
        write_raw(url, FIRST_LOAD + LATE_LOAD, "all")
        run_dbt(["run", "--select", "+int_identifiers_resolved", *VARS], DBT_PROJECT, url)
        assert profiles(url) == graph["second"]
    finally:
        drop_database(server_url, url)


def test_oversized_cluster_stops_the_run_and_keeps_the_resolution(graph):
    before = profiles(graph["url"])
    limited = json.dumps({"identity_blocklist": BLOCKLIST, "max_cluster_size": 10})
    with pytest.raises(DbtFailure) as failure:
        run_dbt(
            ["run", "--select", "int_identifiers_resolved", "--full-refresh", "--vars", limited],
            DBT_PROJECT,
            graph["url"],
        )
    message = str(failure.value)
    assert "identity cluster too large" in message
    assert (
        f"profile {profile_of_key('anonymous_id:long-d1')} (survivor anonymous_id:long-d1):"
        " 20 identifiers" in message
    )
    assert profiles(graph["url"]) == before


def test_removed_record_splits_the_profile(graph, db):
    """The record linking chain-d2 to chain-e1 disappears: its edge becomes a tombstone, and
    the part of the chain without the survivor gets its own id, logged as a split."""
    db.execute("delete from raw.web_events where event_id = 'chain-2'")
    build(graph["url"])
    assert members({"now": profiles(graph["url"])}, "chain-", key="now") == {
        profile_of_key("anonymous_id:chain-d1"): {
            "anonymous_id:chain-d1",
            "email:chain-e1@example.com",
        },
        profile_of_key("anonymous_id:chain-d2"): {
            "anonymous_id:chain-d2",
            "email:chain-e2@example.com",
        },
    }
    tombstones = db.execute(
        "select left_identifier_value, right_identifier_value from intermediate.int_identity_edges"
        " where not is_active"
    ).fetchall()
    assert tombstones == [("chain-d2", "chain-e1@example.com")]
    split = db.execute(
        "select previous_profile_id, surviving_profile_id, identifiers_moved"
        " from marts.identity_merge_log where rule = 'split'"
    ).fetchall()
    assert split == [
        (profile_of_key("anonymous_id:chain-d1"), profile_of_key("anonymous_id:chain-d2"), 2)
    ]


def test_links_seen_again_move_a_limit_cut_and_update_seen_times(graph, db):
    """Records that only repeat known links: u2 has now used the shared device four times
    against u1's three, so the limit rule keeps the device with u2, as a full rebuild does;
    a link seen again elsewhere changes no profile, only the identifiers' last_seen_at."""
    again = [
        web(f"shared-again-{i}", "shared-d", "shared-u2", "shared-e2@example.com", minutes=500 + i)
        for i in range(3)
    ]
    write_raw(
        graph["url"],
        [*again, web("disjoint-again", "disjoint-d1", "disjoint-u1", minutes=600)],
        "again",
    )
    before = profiles(graph["url"])
    output = build(graph["url"])
    incremental = profiles(graph["url"])
    assert members({"now": incremental}, "shared-", key="now") == {
        profile_of_key("anonymous_id:shared-d2"): {
            "anonymous_id:shared-d",
            "anonymous_id:shared-d2",
            "user_id:shared-u2",
            "email:shared-e2@example.com",
        },
        profile_of_key("email:shared-e1@example.com"): {
            "user_id:shared-u1",
            "email:shared-e1@example.com",
        },
    }
    assert {key: profile for key, profile in incremental.items() if "shared-" not in key} == {
        key: profile for key, profile in before.items() if "shared-" not in key
    }
    seen = db.execute(
        "select identifier_key, last_seen_at, resolved_at = (select max(resolved_at)"
        " from intermediate.int_identifiers_resolved) from intermediate.int_identifiers_resolved"
        " where identifier_key like '%disjoint-%1' order by 1"
    ).fetchall()
    assert seen == [
        ("anonymous_id:disjoint-d1", at(600), True),
        ("user_id:disjoint-u1", at(600), True),
    ]
    # the device and u1's identifiers change profile; only disjoint-d1 and -u1 are seen again
    counts = re.search(r"(\d+) profile id changes, (\d+) seen again \(seen times updated\)", output)
    assert counts is not None and int(counts[1]) > 0 and int(counts[2]) == 2
    build(graph["url"], "--full-refresh")
    assert profiles(graph["url"]) == incremental
