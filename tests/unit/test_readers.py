"""Source files become typed rows; malformed records are set aside with a reason and line number."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from journeyflow.readers import GoodRow, RejectedRow, SourceFileError, read_source_file
from journeyflow.sources import parse_sources

SPEC = parse_sources(
    {
        "sources": {
            "orders": {
                "kind": "files",
                "path": "*.csv",
                "format": "csv",
                "key": "order_id",
                "columns": {
                    "order_id": {"type": "text", "required": True},
                    "amount": {"type": "numeric", "required": True},
                    "paid": {"type": "boolean"},
                    "qty": {"type": "integer"},
                    "ts": {"type": "timestamp", "required": True},
                },
            }
        }
    }
)["orders"]


def _with_format(file_format: str):
    from dataclasses import replace

    return replace(SPEC, format=file_format)


def test_csv_rows_are_typed(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,amount,paid,qty,ts\no1,10.50,true,2,2026-10-01T10:00:00Z\n")
    [row] = list(read_source_file(path, SPEC))
    assert isinstance(row, GoodRow)
    assert row.values == ("o1", Decimal("10.50"), True, 2, datetime(2026, 10, 1, 10, tzinfo=UTC))
    assert row.line_number == 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("o2,n/a,true,1,2026-10-01T10:00:00Z", "field 'amount': 'n/a' is not a valid numeric"),
        (",5,true,1,2026-10-01T10:00:00Z", "missing required field 'order_id'"),
        ("o3,5,maybe,1,2026-10-01T10:00:00Z", "field 'paid'"),
        ("o4,5,true,1.5,2026-10-01T10:00:00Z", "field 'qty'"),
        ("o5,5,true,1,not-a-date", "field 'ts'"),
        ("o6,5,true", "expected 5 fields, got 3"),
    ],
)
def test_malformed_csv_rows_are_rejected_with_reason(tmp_path, line, reason):
    path = tmp_path / "orders.csv"
    path.write_text(f"order_id,amount,paid,qty,ts\no1,1,false,1,2026-10-01T10:00:00Z\n{line}\n")
    good, bad = list(read_source_file(path, SPEC))
    assert isinstance(good, GoodRow)
    assert isinstance(bad, RejectedRow)
    assert reason in bad.reason
    assert bad.line_number == 3
    assert bad.raw_text == line


def test_wrong_csv_header_fails_the_file_naming_it(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,total\n1,2\n")
    with pytest.raises(SourceFileError, match="orders.csv.*order_id"):
        list(read_source_file(path, SPEC))


def test_jsonl_keeps_good_lines_and_rejects_broken_ones(tmp_path):
    path = tmp_path / "orders.jsonl.gz"
    lines = [
        json.dumps({"order_id": "a", "amount": 3, "ts": 1790000000, "extra": "kept"}),
        '{"order_id": "b", "amount": ',
        json.dumps(["not", "an", "object"]),
    ]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    rows = list(read_source_file(path, _with_format("jsonl")))
    assert isinstance(rows[0], GoodRow) and rows[0].record["extra"] == "kept"
    assert rows[0].values[4] == datetime.fromtimestamp(1790000000, tz=UTC)
    assert isinstance(rows[1], RejectedRow) and "unparseable JSON" in rows[1].reason
    assert isinstance(rows[2], RejectedRow) and "expected an object" in rows[2].reason


def test_json_file_that_is_not_an_array_fails_the_file(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text('{"order_id": "a"}')
    with pytest.raises(SourceFileError, match="expected a JSON array"):
        list(read_source_file(path, _with_format("json")))
