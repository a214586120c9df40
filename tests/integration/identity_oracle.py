"""An independent union-find over the raw tables: how many people the marts should find."""

from __future__ import annotations

import re

import psycopg

BLOCKLIST = {"test@test.com", "null", "none", "0000000000", "+10000000000", ""}


def normalize_email(value: str | None) -> str | None:
    text = (value or "").strip().lower()
    return text or None


def normalize_phone(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return None


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, node: tuple[str, str]) -> None:
        self.parent.setdefault(node, node)

    def find(self, node: tuple[str, str]) -> tuple[str, str]:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, left: tuple[str, str], right: tuple[str, str]) -> None:
        self.parent[self.find(left)] = self.find(right)


def _identifiers(record: dict[str, str | None]) -> list[tuple[str, str]]:
    found = []
    for kind, value in record.items():
        if value is None or value.lower() in BLOCKLIST:
            continue
        found.append((kind, value))
    return found


def _records(conn: psycopg.Connection):
    for anonymous_id, user_id, email in conn.execute(
        "select anonymous_id, user_id, email from raw.web_events"
    ):
        yield {"anonymous_id": anonymous_id, "user_id": user_id, "email": normalize_email(email)}
    for crm_id, user_id, email, phone in conn.execute(
        "select crm_id, user_id, email, phone from raw.crm_contacts"
    ):
        yield {
            "crm_id": crm_id,
            "user_id": user_id,
            "email": normalize_email(email),
            "phone": normalize_phone(phone),
        }
    for table, column in (
        ("orders", "customer_email"),
        ("support_tickets", "requester_email"),
        ("email_events", "email"),
    ):
        for (email,) in conn.execute(f"select {column} from raw.{table}"):
            yield {"email": normalize_email(email)}


def expected_profile_count(conn: psycopg.Connection) -> int:
    """Connected components of identifiers that appear together on any raw record."""
    graph = UnionFind()
    for record in _records(conn):
        identifiers = _identifiers(record)
        for node in identifiers:
            graph.add(node)
        for left, right in zip(identifiers, identifiers[1:], strict=False):
            graph.union(left, right)
    return len({graph.find(node) for node in graph.parent})
