"""The sources file is validated with errors that name the YAML path of the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeyflow.sources import SourceConfigError, load_sources, parse_sources

ROOT = Path(__file__).resolve().parents[2]


def _document(**overrides):
    source = {
        "kind": "files",
        "path": "orders/*.csv",
        "format": "csv",
        "key": "order_id",
        "columns": {"order_id": {"type": "text", "required": True}, "amount": {"type": "numeric"}},
    }
    source.update(overrides)
    return {"sources": {"orders": source}}


def test_shipped_sources_file_is_valid():
    specs = load_sources(ROOT / "dags" / "config" / "sources.yml")
    assert set(specs) == {"web_events", "orders", "support_tickets", "crm_contacts", "email_events"}
    assert specs["orders"].table == "raw.orders"
    assert specs["orders"].rejected_table == "raw.orders__rejected"


def test_valid_document_parses_columns_in_order():
    spec = parse_sources(_document())["orders"]
    assert spec.column_names == ["order_id", "amount"]
    assert spec.columns[0].required and not spec.columns[1].required
    assert spec.columns[1].sql_type == "numeric"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "ftp"}, "sources.orders.kind: 'ftp' is not one of"),
        ({"format": "xml"}, "sources.orders.format"),
        ({"key": "missing"}, "sources.orders.key"),
        ({"path": None}, "sources.orders.path: required field is missing"),
        ({"columns": {"amount": {"type": "money"}}}, "sources.orders.columns.amount.type"),
        ({"columns": {"Amount": {"type": "text"}}}, "sources.orders.columns.Amount"),
        ({"max_rejected_ratio": 2}, "sources.orders.max_rejected_ratio"),
    ],
)
def test_invalid_documents_name_the_yaml_path(overrides, message):
    with pytest.raises(SourceConfigError, match=message.replace("(", r"\(")):
        parse_sources(_document(**overrides))


def test_missing_top_level_mapping():
    with pytest.raises(SourceConfigError, match="top-level `sources`"):
        parse_sources({"source": {}})


def test_file_errors_carry_the_file_name(tmp_path):
    path = tmp_path / "sources.yml"
    path.write_text("sources:\n  orders:\n    kind: files\n")
    with pytest.raises(SourceConfigError, match=f"{path}: sources.orders.format"):
        load_sources(path)


COLUMNS = {
    "id": {"type": "text", "required": True},
    "updated_at": {"type": "timestamp", "required": True},
    "deleted_at": {"type": "timestamp"},
    "active": {"type": "boolean"},
}


def _source(kind: str, **fields):
    return {"sources": {"accounts": {"kind": kind, "key": "id", "columns": COLUMNS, **fields}}}


def test_every_kind_parses():
    http = parse_sources(
        _source(
            "http_json",
            url="https://api.example.com/v1/accounts",
            connection="crm_api",
            records_path="data",
            pagination={"type": "cursor", "next_cursor_path": "meta.next"},
            incremental={"param": "updated_since", "field": "updated_at", "lookback": "2h"},
        )
    )["accounts"]
    assert http.by_interval and http.http.pagination.next_cursor_path == "meta.next"
    assert http.updated_at_column == "updated_at" and http.lookback.total_seconds() == 7200
    table = parse_sources(
        _source(
            "postgres_table",
            connection="ops_db",
            table="public.accounts",
            incremental={"field": "updated_at", "lookback": "30m"},
            soft_delete_column="deleted_at",
        )
    )["accounts"]
    assert table.postgres.table == "public.accounts" and table.lookback.total_seconds() == 1800
    events = parse_sources(_source("sendgrid_events", path="sendgrid/", verification_key="AAAA"))
    assert events["accounts"].verification_key == "AAAA" and not events["accounts"].by_interval
    parquet = parse_sources(_source("files", path="a/*.parquet", format="parquet"))
    assert parquet["accounts"].format == "parquet"


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("http_json", {}, "sources.accounts.url: required field is missing"),
        ("http_json", {"url": "ftp://x"}, "sources.accounts.url: expected an http"),
        ("http_json", {"url": "/v1/a"}, "sources.accounts.url: a relative URL needs"),
        (
            "http_json",
            {"url": "https://x", "pagination": {"type": "scroll"}},
            "sources.accounts.pagination.type: 'scroll' is not one of",
        ),
        (
            "http_json",
            {"url": "https://x", "pagination": {"type": "page", "page_size": 0}},
            "sources.accounts.pagination.page_size: must be at least 1",
        ),
        (
            "http_json",
            {"url": "https://x", "incremental": {"field": "updated_at"}},
            "sources.accounts.incremental.param: required field is missing",
        ),
        (
            "http_json",
            {"url": "https://x", "incremental": {"param": "since", "field": "active"}},
            "sources.accounts.incremental.field: column 'active' must be declared as timestamp",
        ),
        ("http_json", {"url": "https://x", "retries": 3}, "sources.accounts.retries: unknown"),
        (
            "postgres_table",
            {"connection": "ops", "incremental": {"field": "updated_at"}},
            "sources.accounts.table: required field is missing",
        ),
        (
            "postgres_table",
            {"connection": "ops", "table": "accounts"},
            "sources.accounts.incremental: required field is missing",
        ),
        (
            "postgres_table",
            {"connection": "ops", "table": "a;drop", "incremental": {"field": "updated_at"}},
            "sources.accounts.table: 'a;drop' is not a",
        ),
        (
            "postgres_table",
            {
                "connection": "ops",
                "table": "accounts",
                "incremental": {"field": "updated_at", "lookback": "soon"},
            },
            "sources.accounts.incremental.lookback: 'soon' is not a duration",
        ),
        (
            "postgres_table",
            {
                "connection": "ops",
                "table": "accounts",
                "incremental": {"field": "updated_at"},
                "soft_delete_column": "removed",
            },
            "sources.accounts.soft_delete_column: 'removed' is not one of the declared",
        ),
        ("sendgrid_events", {}, "sources.accounts.path: required field is missing"),
        (
            "sendgrid_events",
            {"path": "x", "verification_key": "not base64!"},
            "sources.accounts.verification_key: expected the base64 public key",
        ),
        ("files", {"path": "x", "format": "xml"}, "sources.accounts.format: 'xml'"),
        ("files", {"path": "x", "format": "csv", "url": "y"}, "sources.accounts.url: unknown"),
    ],
)
def test_kind_specific_errors_name_the_yaml_path(kind, fields, message):
    with pytest.raises(SourceConfigError, match=message.replace("(", r"\(")):
        parse_sources(_source(kind, **fields))
