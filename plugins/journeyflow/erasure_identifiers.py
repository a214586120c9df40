"""Identifiers of an erasure request: normalised like identity resolution, hashed for tombstones."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

IDENTIFIER_TYPES = ("email", "phone", "user_id", "crm_id", "anonymous_id", "profile_id")
# Types tried, in this order, when a request names no identifier_type and the value is neither
# an e-mail, a phone number nor a profile id.
OPAQUE_TYPES = ("user_id", "crm_id", "anonymous_id")
PROFILE_ID = re.compile(r"p_[0-9a-f]{16}")
PHONE_LIKE = re.compile(r"[+0-9][0-9 ()./-]{6,}")
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
EDGE_WHITESPACE = re.compile(r"^\s+|\s+$")


class ErasureRequestError(ValueError):
    """The request's identifier is missing, of an unknown type or not valid for its type."""


@dataclass(frozen=True, order=True)
class Identifier:
    """One identifier in the normalised form the identity graph stores."""

    type: str
    value: str

    @property
    def digest(self) -> str:
        return digest(self.value)


@dataclass(frozen=True)
class PhoneRules:
    """Calling codes and the default country, as dbt's normalize_phone uses them."""

    calling_codes: dict[str, str]
    default_country: str

    def code_for(self, country: str | None) -> str:
        key = (country or self.default_country).strip().upper()
        return self.calling_codes.get(key, self.calling_codes[self.default_country.upper()])


def digest(value: str) -> str:
    """SHA-256 (hex) of a normalised value: what tombstones and the audit store instead of it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@lru_cache(maxsize=4)
def phone_rules(dbt_project_dir: Path) -> PhoneRules:
    """The phone vars of dbt_project.yml, so requests are normalised exactly like the models."""
    project = yaml.safe_load((dbt_project_dir / "dbt_project.yml").read_text())
    variables = project.get("vars", {})
    codes = {str(k).upper(): str(v) for k, v in variables["phone_calling_codes"].items()}
    return PhoneRules(codes, str(variables.get("phone_default_country", "US")).upper())


def normalize_email(value: str) -> str:
    """Trimmed (any whitespace) and lower-cased, like the normalize_email macro."""
    return EDGE_WHITESPACE.sub("", value).lower()


def _phone_candidate(value: str, digits: str, code: str) -> str | None:
    if value.lstrip().startswith("+"):
        return "+" + digits
    if code == "1":
        if digits.startswith("011"):
            return "+" + digits[3:]
        if len(digits) == 10:
            return "+1" + digits
        if len(digits) == 11 and digits.startswith("1"):
            return "+" + digits
        return None
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return "+" + code + digits[1:]
    return "+" + code + digits


def normalize_phone(value: str, rules: PhoneRules, country: str | None = None) -> str | None:
    """E.164 like the normalize_phone macro; None when the result is not plausible E.164."""
    digits = re.sub(r"[^0-9]", "", value)
    candidate = _phone_candidate(value, digits, rules.code_for(country))
    if candidate is None or not E164.fullmatch(candidate):
        return None
    if candidate.startswith("+1") and len(candidate) != 12:
        return None
    return candidate


def phone_digit_forms(e164: str, rules: PhoneRules) -> list[str]:
    """Digit strings a raw phone column may hold for this number (international or national)."""
    digits = e164.lstrip("+")
    codes = sorted(set(rules.calling_codes.values()), key=len, reverse=True)
    code = next((c for c in codes if digits.startswith(c)), None)
    forms = {digits, "00" + digits, "011" + digits}
    if code is not None:
        national = digits[len(code) :]
        forms.update({national, "0" + national} if code != "1" else {national})
    return sorted(forms)


def infer_identifier_types(value: str) -> tuple[str, ...]:
    """The identifier types a bare value can be, most specific first."""
    stripped = value.strip()
    if "@" in stripped:
        return ("email",)
    if PROFILE_ID.fullmatch(stripped):
        return ("profile_id",)
    if PHONE_LIKE.fullmatch(stripped) and len(re.sub(r"[^0-9]", "", stripped)) >= 8:
        return ("phone", *OPAQUE_TYPES)
    return OPAQUE_TYPES


def normalize_identifier(value: str, identifier_type: str, rules: PhoneRules) -> Identifier:
    """One identifier in graph form; ErasureRequestError when it is not valid for its type."""
    if identifier_type not in IDENTIFIER_TYPES:
        raise ErasureRequestError(
            f"identifier_type {identifier_type!r} is not one of {', '.join(IDENTIFIER_TYPES)}"
        )
    if identifier_type == "email":
        normalised = normalize_email(value)
        if "@" not in normalised:
            raise ErasureRequestError("identifier is not an e-mail address (no '@')")
    elif identifier_type == "phone":
        normalised = normalize_phone(value, rules)
        if normalised is None:
            raise ErasureRequestError("identifier is not a phone number that normalises to E.164")
    else:
        normalised = value.strip()
    if not normalised:
        raise ErasureRequestError("identifier is empty")
    return Identifier(identifier_type, normalised)


def request_identifiers(
    value: object, identifier_type: str | None, rules: PhoneRules
) -> list[Identifier]:
    """The identifier(s) a request names: its declared type, or every type the value can be."""
    if not isinstance(value, str) or not value.strip():
        raise ErasureRequestError("conf.identifier must be a non-empty string")
    if identifier_type:
        return [normalize_identifier(value, identifier_type, rules)]
    found = []
    for candidate in infer_identifier_types(value):
        try:
            found.append(normalize_identifier(value, candidate, rules))
        except ErasureRequestError:
            continue
    if not found:
        raise ErasureRequestError("identifier matches no identifier type; set identifier_type")
    return found


def text_needles(values: set[str], min_length: int) -> list[str]:
    """Values searched for inside free text: distinct, long enough not to hit unrelated text."""
    return sorted({v for v in values if len(v) >= min_length}, key=lambda v: (-len(v), v))


# Characters that continue an identifier: a needle next to one of them is part of another
# value ('ann@x.com' inside 'joann@x.com', 'usr_1' inside 'usr_12') and is not matched.
IDENTIFIER_CHARS = "A-Za-z0-9_.%+@-"


def needle_pattern(needles: list[str]) -> str:
    """A regular expression (PostgreSQL and Python) matching any needle as a whole value.

    Groups: 1 the character before, 2 the needle, 3 the character after; replace with
    '\\1<text>\\3' to keep the surroundings.
    """
    alternatives = "|".join(re.escape(needle) for needle in needles)
    edge = f"[^{IDENTIFIER_CHARS}]"
    return f"(^|{edge})({alternatives})($|{edge})"
