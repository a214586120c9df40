"""Compare two warehouses table by table, ignoring when rows were written and by which run."""

from __future__ import annotations

import psycopg

COMPARED_SCHEMAS = ["raw", "intermediate", "marts", "reporting", "activation"]
# When a row was written and by which run differ between two runs of the same data.
VOLATILE_COLUMNS = {
    "_loaded_at",
    "loaded_at",
    "run_id",
    "decided_at",
    "created_at",
    "sent_at",
    "refreshed_at",
    "extracted_at",
    "assigned_at",
    "claimed_at",
    "erased_at",
    "changed_at",
    "structure_changed_at",
    "resolved_at",
    "restated_at",
    "rebuilt_at",
    "profile_changed_at",
    "merged_at",
}


# Tables that describe the runs themselves (each gate run adds rows; what an incremental
# run recomputed and why; what the previous run saw), not the data.
RUN_HISTORY_TABLES = {
    "reporting.rpt_data_health",
    "intermediate.int_profiles_to_rebuild",
    "intermediate.int_touchpoint_changes",
    "intermediate.int_identity_edges_state",
    "intermediate.int_email_spellings_state",
    "intermediate.int_touchpoints_unioned_state",
}


def fingerprint(
    url: str,
    schemas: list[str] = COMPARED_SCHEMAS,
    ignore_columns: set[str] = frozenset(),
    row_filters: dict[str, str] | None = None,
    include_views: bool = False,
    skip_tables: set[str] = frozenset(),
) -> dict[str, str]:
    """md5 of every table's rows, ignoring when a row was written and by which run.

    Tables are discovered in `schemas` (views too with `include_views`); `row_filters` maps a
    table to a SQL condition its compared rows must meet.
    """
    table_types = ["BASE TABLE", "VIEW"] if include_views else ["BASE TABLE"]
    ignored = VOLATILE_COLUMNS | set(ignore_columns)
    skipped = RUN_HISTORY_TABLES | set(skip_tables)
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "select c.table_schema || '.' || c.table_name, c.column_name"
            " from information_schema.columns c join information_schema.tables t"
            " using (table_schema, table_name)"
            " where c.table_schema = any(%s) and t.table_type = any(%s)"
            " order by 1, c.ordinal_position",
            (list(schemas), table_types),
        ).fetchall()
        tables: dict[str, list[str]] = {}
        for table, column in columns:
            if column not in ignored:
                tables.setdefault(table, []).append(f'"{column}"')
        return {
            table: conn.execute(
                f"select count(*) || ':' || md5(coalesce(string_agg(r, '|' order by r), ''))"
                f" from (select ({', '.join(cols)})::text as r from {table}"
                f" where {(row_filters or {}).get(table, 'true')}) rows"
            ).fetchone()[0]
            for table, cols in tables.items()
            if table not in skipped
        }
