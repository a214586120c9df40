"""Erasure requests: identifier normalisation, type inference and the SQL the erasure builds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from journeyflow.erasure import Person, Table, person_row_condition, tombstoned_row_condition
from journeyflow.erasure_identifiers import (
    ErasureRequestError,
    Identifier,
    PhoneRules,
    infer_identifier_types,
    needle_pattern,
    normalize_email,
    normalize_phone,
    phone_digit_forms,
    phone_rules,
    request_identifiers,
    text_needles,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = PhoneRules({"US": "1", "GB": "44", "FR": "33", "DE": "49"}, "US")


def test_emails_are_trimmed_and_lower_cased_like_staging():
    assert normalize_email(" \tAnn.Lee@Example.COM\n") == "ann.lee@example.com"


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("(617) 713-6140", None, "+16177136140"),
        ("1-617-713-6140", None, "+16177136140"),
        ("011 44 7700 900123", None, "+447700900123"),
        ("+44 7700 900123", None, "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("01 42 69 25 25", "FR", "+33142692525"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("12345", None, None),
        ("+1 617 713 614", None, None),
    ],
)
def test_phones_normalise_to_e164_like_the_dbt_macro(raw, country, e164):
    assert normalize_phone(raw, RULES, country) == e164


def test_phone_rules_come_from_the_dbt_project():
    rules = phone_rules(ROOT / "dbt_project")
    assert rules.default_country == "US"
    assert rules.calling_codes["GB"] == "44"


def test_phone_digit_forms_cover_international_and_national_spellings():
    assert set(phone_digit_forms("+33142692525", RULES)) == {
        "33142692525",
        "0033142692525",
        "01133142692525",
        "142692525",
        "0142692525",
    }
    assert "6177136140" in phone_digit_forms("+16177136140", RULES)


@pytest.mark.parametrize(
    ("value", "types"),
    [
        ("ann@example.com", ("email",)),
        ("p_0123456789abcdef", ("profile_id",)),
        ("+44 7700 900123", ("phone", "user_id", "crm_id", "anonymous_id")),
        ("usr_236cc5e1014d", ("user_id", "crm_id", "anonymous_id")),
        ("CRM-000001", ("user_id", "crm_id", "anonymous_id")),
    ],
)
def test_a_bare_value_is_tried_as_every_type_it_can_be(value, types):
    assert infer_identifier_types(value) == types


def test_a_request_normalises_its_identifier():
    assert request_identifiers(" Ann@Example.com ", None, RULES) == [
        Identifier("email", "ann@example.com")
    ]
    assert request_identifiers("(617) 713-6140", "phone", RULES) == [
        Identifier("phone", "+16177136140")
    ]
    found = request_identifiers("6177136140", None, RULES)
    assert found[0] == Identifier("phone", "+16177136140")
    assert Identifier("user_id", "6177136140") in found


@pytest.mark.parametrize(
    ("value", "identifier_type", "message"),
    [
        ("", None, "non-empty string"),
        (None, None, "non-empty string"),
        (42, None, "non-empty string"),
        ("ann@example.com", "passport", "is not one of"),
        ("ann.example.com", "email", "no '@'"),
        ("12", "phone", "E.164"),
    ],
)
def test_bad_requests_fail_with_a_clear_error(value, identifier_type, message):
    with pytest.raises(ErasureRequestError, match=message):
        request_identifiers(value, identifier_type, RULES)


def test_digests_are_sha256_of_the_normalised_value():
    identifier = Identifier("email", "ann@example.com")
    assert identifier.digest == hashlib.sha256(b"ann@example.com").hexdigest()


def test_short_values_are_never_searched_inside_text():
    assert text_needles({"ab", "ann@example.com", "usr_1"}, 5) == ["ann@example.com", "usr_1"]


def test_needle_pattern_matches_values_literally():
    import re

    pattern = needle_pattern(["a.b+c@x.com", "+16177136140", "usr_1"])
    assert re.search(pattern, "to: a.b+c@x.com")
    assert re.search(pattern, '{"phone": "+16177136140"}')
    assert not re.search(pattern, "to: aXb+c@x.com")


@pytest.mark.parametrize("text", ["joa.b+c@x.com", "a.b+c@x.com.au", "usr_12", "xusr_1"])
def test_needle_pattern_leaves_longer_values_that_contain_a_needle(text):
    import re

    assert not re.search(needle_pattern(["a.b+c@x.com", "usr_1"]), text)


def test_redaction_keeps_what_surrounds_the_value():
    import re

    from journeyflow.erasure import REDACTED

    pattern = needle_pattern(["ann@x.com"])
    sample = '["ann@x.com", "joann@x.com", "ann@x.com"]'
    assert re.sub(pattern, REDACTED, sample, flags=re.I) == (
        '["[erased]", "joann@x.com", "[erased]"]'
    )


def _rendered(composable) -> str:
    return composable.as_string(None)


def test_a_table_is_matched_by_profile_identifier_and_pair_columns():
    person = Person(
        {Identifier("email", "ann@example.com"), Identifier("phone", "+16177136140")},
        profile_ids={"p_0123456789abcdef"},
    )
    table = Table(
        "marts",
        "fct_new",
        {
            "surviving_profile_id": "text",
            "customer_email": "text",
            "phone": "text",
            "left_identifier_type": "text",
            "left_identifier_value": "text",
            "note": "text",
        },
    )
    rendered = _rendered(person_row_condition(table, person, RULES))
    assert '"surviving_profile_id"::text = any(' in rendered
    assert "p_0123456789abcdef" in rendered
    assert '"customer_email"' in rendered and "ann@example.com" in rendered
    assert "6177136140" in rendered
    assert '("left_identifier_type", "left_identifier_value") in' in rendered
    assert '"note"' not in rendered


def test_a_table_without_person_columns_has_no_row_condition():
    table = Table("reporting", "rpt_kpi", {"day": "date", "stage": "text"})
    assert person_row_condition(table, Person(set(), {"p_0123456789abcdef"}), RULES) is None


def test_the_loader_checks_every_identifier_column_against_tombstones():
    rendered = _rendered(tombstoned_row_condition({"email", "phone", "user_id", "amount"}))
    assert rendered.count("activation.erased_identifiers") == 4  # email, user_id, phone twice
    assert "'user_id'" in rendered and "'phone'" in rendered
    assert tombstoned_row_condition({"amount"}) is None
