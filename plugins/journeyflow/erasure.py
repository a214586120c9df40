"""Erase a person from the warehouse: find them, tombstone them, delete or redact every trace.

Which tables and columns can hold a person is discovered from information_schema on every
request, so tables added later (new marts, incremental models) are covered without a list:

- a column named `profile_id` or `<x>_profile_id` holds profile ids: a matching row is the
  person's row and is deleted;
- a column listed in IDENTIFIER_COLUMNS holds identifiers of that type (the registry is the
  one thing discovery cannot know); a pair `<x>identifier_type` / `<x>identifier_value` holds
  typed identifiers (the identity graph); a matching row is deleted;
- every other text, json and array column is searched for the person's values (identifiers
  as normalised and as spelled in raw, profile ids): in a source-record table (one with a
  `_record` or `_raw_text` column: raw rows, quarantined rows) the row is the person's record
  and is deleted; anywhere else the value is replaced by '[erased]' and the row kept
  (e.g. a gate result whose sample listed the address).

Activation rows (decisions, assignments, audience spells, outbox) are deleted, not
anonymised: the tombstones, not the outbox, keep the person from being mailed again, and
campaign aggregates lose the person like every other table does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources

import psycopg
from psycopg import sql

from journeyflow.erasure_identifiers import (
    ErasureRequestError,
    Identifier,
    PhoneRules,
    digest,
    needle_pattern,
    normalize_email,
    phone_digit_forms,
    text_needles,
)

log = logging.getLogger(__name__)

# Column names that hold an identifier of a known type, in whatever table they appear.
IDENTIFIER_COLUMNS = {
    "email": "email",
    "customer_email": "email",
    "requester_email": "email",
    "recipient_email": "email",
    "phone": "phone",
    "user_id": "user_id",
    "crm_id": "crm_id",
    "anonymous_id": "anonymous_id",
}
SOURCE_RECORD_COLUMNS = ("_record", "_raw_text")
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")
# Tables that hold digests only and must survive the erasure they record.
KEPT_TABLES = {
    ("activation", "erased_identifiers"),
    ("activation", "erasure_suppressions"),
    ("ops", "erasure_requests"),
}
MIN_NEEDLE_LENGTH = 5  # shorter values are matched in identifier columns only, never in text
REDACTED = "\\1[erased]\\3"  # needle_pattern's groups 1 and 3 keep the surroundings
GRAPH = "intermediate.int_identifiers_resolved"
MERGE_LOG = "marts.identity_merge_log"
OUTBOX = "activation.campaign_sends"
TOMBSTONES = "activation.erased_identifiers"
DIGEST_SQL = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"


@dataclass
class Person:
    """Everything known of one erasure subject: identifiers, profile ids, raw spellings."""

    identifiers: set[Identifier]
    profile_ids: set[str] = field(default_factory=set)
    spellings: set[Identifier] = field(default_factory=set)
    send_addresses: set[str] = field(default_factory=set)

    def values_of(self, identifier_type: str) -> list[str]:
        return sorted(i.value for i in self.identifiers if i.type == identifier_type)

    @property
    def emails(self) -> list[str]:
        return sorted(set(self.values_of("email")) | self.send_addresses)

    @property
    def tombstones(self) -> set[Identifier]:
        profiles = {Identifier("profile_id", p) for p in self.profile_ids}
        return self.identifiers | self.spellings | profiles

    def needles(self) -> list[str]:
        values = {i.value for i in self.tombstones} | self.send_addresses
        return text_needles(values, MIN_NEEDLE_LENGTH)


@dataclass(frozen=True)
class Table:
    """A base table with its text-like columns and all column names."""

    schema: str
    name: str
    columns: dict[str, str]  # name -> information_schema data_type

    @property
    def qualified(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def holds_source_records(self) -> bool:
        return any(column in self.columns for column in SOURCE_RECORD_COLUMNS)

    @property
    def text_columns(self) -> list[str]:
        return sorted(c for c, t in self.columns.items() if t in TEXT_TYPES)


def ensure_erasure_tables(conn: psycopg.Connection) -> None:
    """Create the tombstone, suppression outbox and audit tables (idempotent)."""
    conn.execute(resources.files("journeyflow").joinpath("sql/activation.sql").read_text())
    conn.execute(resources.files("journeyflow").joinpath("sql/erasure.sql").read_text())


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def warehouse_tables(conn: psycopg.Connection) -> list[Table]:
    """Every base table outside the system schemas, with its columns (information_schema)."""
    rows = conn.execute(
        "select c.table_schema, c.table_name, c.column_name, c.data_type"
        " from information_schema.columns c join information_schema.tables t"
        " on t.table_schema = c.table_schema and t.table_name = c.table_name"
        " where t.table_type = 'BASE TABLE'"
        " and c.table_schema not in ('pg_catalog', 'information_schema')"
        " and c.table_schema not like 'pg\\_%%'"
        " order by 1, 2, c.ordinal_position"
    ).fetchall()
    tables: dict[tuple[str, str], dict[str, str]] = {}
    for schema, name, column, data_type in rows:
        tables.setdefault((schema, name), {})[column] = data_type
    return [
        Table(schema, name, columns)
        for (schema, name), columns in tables.items()
        if (schema, name) not in KEPT_TABLES
    ]


# --- finding the person ----------------------------------------------------------------------


def narrow_candidates(conn: psycopg.Connection, candidates: list[Identifier]) -> list[Identifier]:
    """Of the types a bare value can be, the one the identity graph knows; else an error."""
    if len(candidates) == 1:
        return candidates
    known: dict[Identifier, str] = {}
    if _exists(conn, GRAPH):
        rows = conn.execute(
            f"select identifier_type, identifier_value, profile_id from {GRAPH}"
            " where (identifier_type, identifier_value) in"
            " (select * from unnest(%s::text[], %s::text[]))",
            ([c.type for c in candidates], [c.value for c in candidates]),
        ).fetchall()
        known = {Identifier(t, v): p for t, v, p in rows}
    if len(set(known.values())) == 1:
        return sorted(known)
    found = "no profile" if not known else f"{len(set(known.values()))} profiles"
    raise ErasureRequestError(
        f"the identifier could be a {' or '.join(c.type for c in candidates)} and matches"
        f" {found}; set identifier_type"
    )


def others_current_profiles(conn: psycopg.Connection, earlier_ids: set[str]) -> set[str]:
    """Of the person's earlier profile ids, those someone else holds now (after a split)."""
    if not earlier_ids or not _exists(conn, GRAPH):
        return set()
    rows = conn.execute(
        f"select distinct profile_id from {GRAPH} where profile_id = any(%s)",
        (sorted(earlier_ids),),
    ).fetchall()
    return {profile_id for (profile_id,) in rows}


def find_person(conn: psycopg.Connection, requested: list[Identifier]) -> Person:
    """The requested identifiers, their profiles and every identifier of those profiles."""
    person = Person(set(requested))
    if _exists(conn, GRAPH):
        pairs = [(i.type, i.value) for i in requested if i.type != "profile_id"]
        seeds = [i.value for i in requested if i.type == "profile_id"]
        rows = conn.execute(
            f"with seed as (select profile_id from {GRAPH}"
            " where (identifier_type, identifier_value) in (select * from unnest(%s::text[],"
            " %s::text[])) or profile_id = any(%s))"
            f" select identifier_type, identifier_value, profile_id, previous_profile_id"
            f" from {GRAPH} where profile_id in (select profile_id from seed)",
            ([p[0] for p in pairs], [p[1] for p in pairs], seeds),
        ).fetchall()
        for identifier_type, value, profile_id, previous in rows:
            person.identifiers.add(Identifier(identifier_type, value))
            person.profile_ids.update(p for p in (profile_id, previous) if p)
        person.profile_ids.update(seeds)
        current = {profile_id for _, _, profile_id, _ in rows} | set(seeds)
    else:
        current = set()
    if person.profile_ids and _exists(conn, MERGE_LOG):
        rows = conn.execute(
            f"select previous_profile_id from {MERGE_LOG} where surviving_profile_id = any(%s)",
            (sorted(person.profile_ids),),
        ).fetchall()
        person.profile_ids.update(p for (p,) in rows if p)
    person.profile_ids -= others_current_profiles(conn, person.profile_ids - current)
    if person.profile_ids and _exists(conn, OUTBOX):
        rows = conn.execute(
            f"select distinct email from {OUTBOX} where profile_id = any(%s)",
            (sorted(person.profile_ids),),
        ).fetchall()
        person.send_addresses.update(normalize_email(e) for (e,) in rows if e)
    return person


def identifier_match(
    column: str, identifier_type: str, person: Person, rules: PhoneRules
) -> sql.Composable | None:
    """SQL: the column holds one of the person's identifiers of its type (as spelled anywhere)."""
    ident = sql.Identifier(column)
    spelled = sorted(s.value for s in person.spellings if s.type == identifier_type)
    if identifier_type == "phone":
        forms = sorted({f for v in person.values_of("phone") for f in phone_digit_forms(v, rules)})
        if not forms and not spelled:
            return None
        return sql.SQL(
            "(regexp_replace({c}::text, '[^0-9]', '', 'g') = any({forms})"
            " or lower(btrim({c}::text)) = any({spelled}))"
        ).format(c=ident, forms=sql.Literal(forms), spelled=sql.Literal(spelled))
    values = person.values_of(identifier_type)
    if identifier_type == "email":
        values = sorted(set(values) | person.send_addresses)
    if not values and not spelled:
        return None
    normalised = "lower(regexp_replace({c}::text, '^\\s+|\\s+$', '', 'g'))"
    if identifier_type != "email":
        normalised = "btrim({c}::text)"
    return sql.SQL(normalised + " = any({values})").format(
        c=ident, values=sql.Literal(sorted(set(values) | set(spelled)))
    )


def _pair_conditions(table: Table, person: Person) -> list[sql.Composable]:
    typed = sorted((i.type, i.value) for i in person.identifiers)
    if not typed:
        return []
    conditions = []
    for column in table.columns:
        if not column.endswith("identifier_value"):
            continue
        type_column = column[: -len("value")] + "type"
        if type_column in table.columns:
            conditions.append(
                sql.SQL(
                    "({t}, {v}) in (select * from unnest({types}::text[], {values}::text[]))"
                ).format(
                    t=sql.Identifier(type_column),
                    v=sql.Identifier(column),
                    types=sql.Literal([p[0] for p in typed]),
                    values=sql.Literal([p[1] for p in typed]),
                )
            )
    return conditions


def person_row_condition(table: Table, person: Person, rules: PhoneRules) -> sql.Composable | None:
    """SQL: the row belongs to the person (profile id, identifier column or identifier pair)."""
    conditions = _pair_conditions(table, person)
    profiles = sql.Literal(sorted(person.profile_ids))
    for column in table.columns:
        if person.profile_ids and (column == "profile_id" or column.endswith("_profile_id")):
            column_sql = sql.Identifier(column)
            conditions.append(sql.SQL("{}::text = any({})").format(column_sql, profiles))
        elif column in IDENTIFIER_COLUMNS:
            match = identifier_match(column, IDENTIFIER_COLUMNS[column], person, rules)
            if match is not None:
                conditions.append(match)
    return sql.SQL(" or ").join(conditions) if conditions else None


def text_condition(table: Table, pattern: str) -> sql.Composable | None:
    """SQL: one of the table's text-like columns mentions a needle."""
    columns = table.text_columns
    if not columns:
        return None
    return sql.SQL(" or ").join(
        sql.SQL("{}::text ~* {}").format(sql.Identifier(c), sql.Literal(pattern)) for c in columns
    )


def collect_spellings(
    conn: psycopg.Connection, tables: list[Table], person: Person, rules: PhoneRules
) -> None:
    """Add the raw spellings of the person's identifiers (e.g. '(555) 010-2030') to `person`."""
    for table in tables:
        if not table.holds_source_records:
            continue
        for column, identifier_type in IDENTIFIER_COLUMNS.items():
            if column not in table.columns:
                continue
            match = identifier_match(column, identifier_type, person, rules)
            if match is None:
                continue
            rows = conn.execute(
                sql.SQL("select distinct lower(btrim({c}::text)) from {t} where {m}").format(
                    c=sql.Identifier(column), t=table.qualified, m=match
                )
            ).fetchall()
            person.spellings.update(Identifier(identifier_type, v) for (v,) in rows if v)


# --- tombstones and erasure --------------------------------------------------------------------


def write_tombstones(conn: psycopg.Connection, person: Person, request_id: str) -> int:
    """Tombstone every identifier and profile id of the person (digests only); idempotent."""
    rows = sorted({(t.type, t.digest) for t in person.tombstones})
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into {TOMBSTONES} (identifier_type, identifier_digest, request_id)"
            " values (%s, %s, %s) on conflict do nothing",
            [(identifier_type, value, request_id) for identifier_type, value in rows],
        )
    return len(rows)


def _redact_table(conn: psycopg.Connection, table: Table, pattern: str) -> int:
    assignments = [
        sql.SQL(
            "{c} = case when {c}::text ~* {p} then cast(regexp_replace({c}::text, {p},"
            " {r}, 'gi') as {type}) else {c} end"
        ).format(
            c=sql.Identifier(column),
            p=sql.Literal(pattern),
            r=sql.Literal(REDACTED),
            type=sql.SQL(_column_type(conn, table, column)),
        )
        for column in table.text_columns
    ]
    return conn.execute(
        sql.SQL("update {} set {} where {}").format(
            table.qualified, sql.SQL(", ").join(assignments), text_condition(table, pattern)
        )
    ).rowcount


def _column_type(conn: psycopg.Connection, table: Table, column: str) -> str:
    return conn.execute(
        "select format_type(atttypid, atttypmod) from pg_attribute"
        " where attrelid = %s::regclass and attname = %s",
        (f'"{table.schema}"."{table.name}"', column),
    ).fetchone()[0]


def erase_from_table(conn, table: Table, person: Person, rules: PhoneRules) -> int:
    """Delete the person's rows of one table and redact their values elsewhere in it."""
    pattern = needle_pattern(person.needles()) if person.needles() else None
    conditions = [person_row_condition(table, person, rules)]
    if table.holds_source_records and pattern:
        conditions.append(text_condition(table, pattern))
    conditions = [c for c in conditions if c is not None]
    affected = 0
    if conditions:
        affected += conn.execute(
            sql.SQL("delete from {} where {}").format(
                table.qualified, sql.SQL(" or ").join(conditions)
            )
        ).rowcount
    if pattern and not table.holds_source_records and table.text_columns:
        affected += _redact_table(conn, table, pattern)
    return affected


def erase_person(conn: psycopg.Connection, person: Person, rules: PhoneRules) -> dict[str, int]:
    """Erase the person from every table of the warehouse; rows affected per table."""
    affected = {}
    for table in warehouse_tables(conn):
        count = erase_from_table(conn, table, person, rules)
        if count:
            affected[table.label] = count
    return affected


# --- keeping tombstoned people out of raw ----------------------------------------------------


def tombstoned_row_condition(columns: set[str]) -> sql.Composable | None:
    """SQL: a raw row carries a tombstoned identifier in one of its identifier columns."""
    conditions = []
    for column, identifier_type in IDENTIFIER_COLUMNS.items():
        if column not in columns:
            continue
        forms = ["lower(btrim({c}::text))"]
        if identifier_type == "phone":
            forms.append("'+' || regexp_replace({c}::text, '[^0-9]', '', 'g')")
        elif identifier_type != "email":
            forms = ["btrim({c}::text)"]
        for form in forms:
            conditions.append(
                sql.SQL(
                    DIGEST_SQL.format(form)
                    + " in (select identifier_digest from "
                    + TOMBSTONES
                    + " where identifier_type = {t})"
                ).format(c=sql.Identifier(column), t=sql.Literal(identifier_type))
            )
    return sql.SQL(" or ").join(conditions) if conditions else None


TOKEN_SPLIT = "[\\s,;\"'{}\\[\\]|<>()]+"


def tombstones_exist(conn: psycopg.Connection) -> bool:
    """Whether any erasure was ever recorded (the loader's fast path)."""
    return (
        _exists(conn, TOMBSTONES)
        and conn.execute(f"select exists (select 1 from {TOMBSTONES})").fetchone()[0]
    )


def drop_tombstoned_rows(
    conn: psycopg.Connection,
    table: sql.Composable,
    rejected_table: sql.Composable,
    columns: list[str],
    batch_id: str,
) -> tuple[int, int]:
    """Delete a just-loaded batch's records of erased people: (rows, quarantined rows)."""
    if not tombstones_exist(conn):
        return 0, 0
    rows = 0
    condition = tombstoned_row_condition(set(columns))
    if condition is not None:
        rows = conn.execute(
            sql.SQL("delete from {} where _batch_id = %s and ({})").format(table, condition),
            (batch_id,),
        ).rowcount
    rejects = conn.execute(
        sql.SQL(
            "delete from {} r where _batch_id = %s and exists (select 1 from"
            " regexp_split_to_table(lower(r._raw_text), %s) as token where "
            + DIGEST_SQL.format("token")
            + f" in (select identifier_digest from {TOMBSTONES}))"
        ).format(rejected_table),
        (batch_id, TOKEN_SPLIT),
    ).rowcount
    return rows, rejects


def drop_replayed_row_if_erased(
    conn: psycopg.Connection,
    table: sql.Composable,
    rejected_table: sql.Composable,
    columns: list[str],
    source_file: str,
    line_number: int,
) -> bool:
    """A fixed quarantined row just replayed into raw: drop it (and its quarantined original)
    when it carries a tombstoned identifier; whether it did."""
    condition = tombstoned_row_condition(set(columns))
    if condition is None or not tombstones_exist(conn):
        return False
    deleted = conn.execute(
        sql.SQL("delete from {} where _source_file = %s and _line_number = %s and ({})").format(
            table, condition
        ),
        (source_file, line_number),
    ).rowcount
    if deleted:
        conn.execute(
            sql.SQL("delete from {} where _source_file = %s and _line_number = %s").format(
                rejected_table
            ),
            (source_file, line_number),
        )
    return bool(deleted)


def audit_digest(identifier: Identifier) -> str:
    """What the audit keeps of the requested identifier."""
    return digest(f"{identifier.type}:{identifier.value}")
