"""Following profile merges and surfacing dbt failures, without a database."""

from __future__ import annotations

from journeyflow.dbt_runner import failing_lines
from journeyflow.identity import surviving_profiles


def test_a_merged_profile_follows_its_survivor():
    assert surviving_profiles([("p_b", "p_a")], {"p_a"}) == {"p_b": "p_a"}


def test_chains_of_merges_end_at_the_current_profile():
    changes = [("p_c", "p_b"), ("p_b", "p_a")]
    assert surviving_profiles(changes, {"p_a"}) == {"p_c": "p_a", "p_b": "p_a"}


def test_the_latest_change_of_a_profile_wins():
    changes = [("p_b", "p_a"), ("p_a", "p_b")]
    assert surviving_profiles(changes, {"p_b"}) == {"p_a": "p_b"}


def test_ids_that_lead_nowhere_current_are_left_alone():
    assert surviving_profiles([("p_b", "p_gone")], {"p_a"}) == {}
    assert surviving_profiles([("p_a", "p_b"), ("p_b", "p_a")], set()) == {}


def test_failure_messages_keep_their_continuation_lines():
    output = [
        "06:13:37  1 of 2 OK created sql view model staging.stg_web__events",
        "06:13:38  Database Error in model int_identifiers_resolved (models/x.sql)",
        "  identity cluster too large: 1 cluster(s) hold more than 10 identifiers",
        "    profile p_1 (survivor anonymous_id:a): 20 identifiers",
        "06:13:38  ",
        "06:13:38  Done. PASS=1 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=2",
    ]
    assert failing_lines(output) == [output[1], output[2], output[3], output[5]]
