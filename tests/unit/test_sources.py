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
