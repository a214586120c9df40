"""Source files become typed rows; malformed records are set aside with a reason and line number."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
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


def _json_spec():
    return _with_format("json")


def _order(number: int, **extra) -> dict:
    return {"order_id": f"o{number}", "amount": number, "ts": 1790000000 + number, **extra}


def test_json_array_is_streamed_across_chunk_boundaries(tmp_path, monkeypatch):
    import journeyflow.readers as readers

    monkeypatch.setattr(readers, "CHUNK_CHARS", 7)  # splits numbers, strings and separators
    path = tmp_path / "orders.json"
    records = [_order(n, note="a, b ] } \\" + str(n)) for n in range(40)]
    path.write_text("  [\n" + ",\n  ".join(json.dumps(r, indent=1) for r in records) + "\n]\n")
    rows = list(read_source_file(path, _json_spec()))
    assert [row.line_number for row in rows] == list(range(1, 41))
    assert all(isinstance(row, GoodRow) for row in rows)
    assert [row.record for row in rows] == records
    assert [json.loads(row.record_json) for row in rows] == records


def test_json_array_element_that_breaks_the_syntax_fails_the_file_naming_it(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text('[{"order_id": "a", "amount": 1, "ts": 1}, {"order_id": "b", "amount": ]')
    with pytest.raises(SourceFileError, match=r"orders.json: expected a JSON array.*element 2"):
        list(read_source_file(path, _json_spec()))


def test_json_array_with_trailing_data_fails(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text('[{"order_id": "a", "amount": 1, "ts": 1}] {"more": 1}')
    with pytest.raises(SourceFileError, match="after the closing"):
        list(read_source_file(path, _json_spec()))


def test_values_postgres_cannot_store_are_rejected_not_fatal(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text(
        '{"order_id": "a", "amount": 1, "ts": 1}\n'
        '{"order_id": "b", "amount": NaN, "ts": 1}\n'
        '{"order_id": "c", "amount": 1, "ts": 1, "note": "nul \\u0000 here"}\n'
    )
    good, nan, nul = list(read_source_file(path, _with_format("jsonl")))
    assert isinstance(good, GoodRow)
    assert isinstance(nan, RejectedRow) and "NaN is not valid JSON" in nan.reason
    assert isinstance(nul, RejectedRow) and "\\u0000" in nul.reason


def test_a_csv_file_declared_as_jsonl_fails_naming_the_file(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text("order_id,amount,ts\no1,2,2026-10-01\n")
    with pytest.raises(SourceFileError, match="orders.jsonl: expected JSON Lines"):
        list(read_source_file(path, _with_format("jsonl")))


def test_a_file_that_is_not_gzip_fails_naming_the_file(tmp_path):
    path = tmp_path / "orders.jsonl.gz"
    path.write_text('{"order_id": "a"}\n')
    with pytest.raises(SourceFileError, match="orders.jsonl.gz: expected JSON Lines, gzip"):
        list(read_source_file(path, _with_format("jsonl")))


def test_gzipped_csv_is_read(tmp_path):
    path = tmp_path / "orders.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("order_id,amount,paid,qty,ts\no1,10.50,true,2,2026-10-01T10:00:00Z\n")
    [row] = list(read_source_file(path, SPEC))
    assert row.values[0] == "o1"


def test_parquet_rows_are_typed_and_kept_whole(tmp_path):
    import fastparquet
    import pandas as pd

    path = tmp_path / "orders.parquet"
    frame = pd.DataFrame(
        {
            "order_id": ["o1", "o2", None],
            "amount": [10.5, float("nan"), 3.0],
            "qty": [1, 2, 3],
            "ts": pd.to_datetime(["2026-10-01T10:00:00Z"] * 3),
            "channel": ["web", "app", "web"],
        }
    )
    fastparquet.write(str(path), frame, row_group_offsets=2)  # two row groups
    good, missing_amount, missing_id = list(read_source_file(path, _with_format("parquet")))
    assert good.values == ("o1", Decimal("10.5"), None, 1, datetime(2026, 10, 1, 10, tzinfo=UTC))
    assert json.loads(good.record_json)["channel"] == "web"
    assert "missing required field 'amount'" in missing_amount.reason
    assert missing_id.line_number == 3 and "order_id" in missing_id.reason


def test_parquet_without_required_columns_or_not_parquet_fails(tmp_path):
    import fastparquet
    import pandas as pd

    path = tmp_path / "orders.parquet"
    fastparquet.write(str(path), pd.DataFrame({"order_id": ["o1"]}))
    with pytest.raises(SourceFileError, match="orders.parquet: Parquet columns.*amount"):
        list(read_source_file(path, _with_format("parquet")))
    path.write_text("order_id,amount\n")
    with pytest.raises(SourceFileError, match="orders.parquet: expected a Parquet file"):
        list(read_source_file(path, _with_format("parquet")))


WIDE_SPEC = parse_sources(
    {
        "sources": {
            "events": {
                "kind": "files",
                "path": "*.jsonl",
                "format": "jsonl",
                "key": "id",
                "columns": {
                    "id": {"type": "text", "required": True},
                    "note": {"type": "text"},
                    "ts": {"type": "timestamp", "required": True},
                    "seen": {"type": "timestamp"},
                    "amount": {"type": "numeric"},
                    "qty": {"type": "integer"},
                    "paid": {"type": "boolean"},
                },
            }
        }
    }
)["events"]
TS = '"ts": "2026-10-01T10:00:00Z"'
# Lines the fast decoder must agree on with the general rules: it either gives the same typed
# values or declines, so that the general path decides (and names the reason).
FAST_PATH_CASES = [
    '{"id": "a", ' + TS + "}",
    '{"id":"a","note":null,"ts":"2026-10-01T10:00:00+02:00","amount":10.50,"qty":3,"paid":true}',
    '{"id": "a", "note": "", ' + TS + "}",
    '{"id": "a", "note": "   ", ' + TS + "}",
    '{"id": "a", "note": "\\t\\u00a0", ' + TS + "}",
    '{"id": "a", "note": "\u3000", ' + TS + "}",
    '{"id": "a", "note": " padded ", ' + TS + "}",
    '{"id": "a", "note": "caf\u00e9 \\u00e9\\n", ' + TS + "}",
    '{"id": " ", ' + TS + "}",
    '{"id": "", ' + TS + "}",
    '{"id": null, ' + TS + "}",
    '{"note": "no id", ' + TS + "}",
    '{"id": 5, ' + TS + "}",
    '{"id": true, ' + TS + "}",
    '{"id": 1.5e3, ' + TS + "}",
    '{"id": {"nested": 1}, ' + TS + "}",
    '{"id": ["a"], ' + TS + "}",
    '{"id": "a", "ts": "2026-10-01T10:00:00"}',
    '{"id": "a", "ts": "2026-10-01"}',
    '{"id": "a", "ts": "2026-10-01 10:00:00Z"}',
    '{"id": "a", "ts": "2026-10-01T10:00:00z"}',
    '{"id": "a", "ts": "2026-10-01T10:00:00.1234567Z"}',
    '{"id": "a", "ts": "2026-10-01T10:00:00.1234565+05:30"}',
    '{"id": "a", "ts": "2026-10-01T10:00:00.123Z"}',
    '{"id": "a", "ts": "2026-10-01t10:00:00.5-0230"}',
    '{"id": "a", "ts": "2026-10-01T10:00:00.000000000Z"}',
    '{"id": "a", "ts": "2026-10-01T10:00"}',
    '{"id": "a", "ts": "2026-10-01T10:00:00+02"}',
    '{"id": "a", "ts": "2026-10-01T24:00:00Z"}',
    '{"id": "a", "ts": "0001-01-01T00:00:00Z", "seen": "2026-10-01T10:00:00.5"}',
    '{"id": "a", "ts": "2026-10-01 10:00:00", "seen": null}',
    '{"id": "a", "ts": " 2026-10-01T10:00:00Z "}',
    '{"id": "a", "ts": "1790000000"}',
    '{"id": "a", "ts": 1790000000}',
    '{"id": "a", "ts": 1790000000.5}',
    '{"id": "a", "ts": "not-a-time"}',
    '{"id": "a", "ts": ""}',
    '{"id": "a", "ts": "2026-02-30T00:00:00Z"}',
    '{"id": "a", ' + TS + ', "seen": ""}',
    '{"id": "a", ' + TS + ', "seen": "  "}',
    '{"id": "a", ' + TS + ', "seen": "2026-10-01T11:00:00-05:00"}',
    '{"id": "a", ' + TS + ', "amount": "10.50", "qty": "3", "paid": "yes"}',
    '{"id": "a", ' + TS + ', "amount": 0.1, "qty": 2.0, "paid": 0}',
    '{"id": "a", ' + TS + ', "amount": 123456789012345678901234567890, "qty": -0}',
    '{"id": "a", ' + TS + ', "amount": 1e400}',
    '{"id": "a", ' + TS + ', "amount": "NaN"}',
    '{"id": "a", ' + TS + ', "amount": true}',
    '{"id": "a", ' + TS + ', "amount": " "}',
    '{"id": "a", ' + TS + ', "amount": "", "qty": "", "paid": ""}',
    '{"id": "a", ' + TS + ', "qty": 1.5}',
    '{"id": "a", ' + TS + ', "qty": "many"}',
    '{"id": "a", ' + TS + ', "paid": "maybe"}',
    '{"id": "a", ' + TS + ', "paid": [true]}',
    '{"id": "a", ' + TS + ', "extra": {"kept": [1, 2, null]}, "more": "x"}',
    '{"id": "first", "id": "last", ' + TS + "}",
    '{"id": "a", "id": 7, ' + TS + "}",
    '  {"id": "a", ' + TS + "}  ",
    '{"id":"a","note":"  ","ts":"2026-10-01T10:00:00Z"}',
    '{"id":"a","note":" \\t","ts":"2026-10-01T10:00:00Z"}',
    '{"id":"a","note":" \\u0020 ","ts":"2026-10-01T10:00:00Z"}',
    '{"id" : "a" , "note" : " " , ' + TS + " }",
    '{"id": "a", "note": "x y", "extra": " ", ' + TS + "}",
    '{"id": "a", "note": "  x  ", "tags": [" a", "b "], ' + TS + "}",
    '{"id":"a","note":" lead","ts":"2026-10-01T10:00:00Z"}',
    '{"id":"a","note":"trail ","ts":"2026-10-01T10:00:00Z"}',
]
# One parsed column (a timestamp): the fast path's shortcut for most sources.
NARROW_SPEC = replace(
    WIDE_SPEC, columns=tuple(c for c in WIDE_SPEC.columns if c.name in ("id", "note", "ts"))
)


def _general_values(line: str, spec=WIDE_SPEC):
    """The general rules' verdict on a line: typed values, or the ValueError they raise."""
    from journeyflow.readers import record_coercer

    try:
        return record_coercer(spec)(json.loads(line))
    except ValueError as error:
        return error


@pytest.mark.parametrize("scanned", [False, True], ids=["line", "scanned"])
@pytest.mark.parametrize("spec", [WIDE_SPEC, NARROW_SPEC], ids=["wide", "narrow"])
@pytest.mark.parametrize("utf8", [False, True], ids=["text", "utf8"])
@pytest.mark.parametrize("line", FAST_PATH_CASES)
def test_fast_decoder_agrees_with_the_general_rules(line, utf8, spec, scanned):
    """`scanned`: the shortcuts a chunk's scan allows (as if the chunk were this one line)."""
    from journeyflow.readers import fast_json_coercer, may_hold_blank, rfc3339_timestamps_agree

    options = {}
    if scanned:
        options = {
            "check_blanks": may_hold_blank(line.encode()),
            "typed_timestamps": rfc3339_timestamps_agree(line.encode()),
        }
    fast = fast_json_coercer(spec, utf8)(line.encode() if utf8 else line, **options)
    general = _general_values(line, spec)
    if fast is not None:
        assert not isinstance(general, ValueError), f"fast path accepted a bad record: {general}"
        assert fast == general
        assert [type(value) for value in fast] == [type(value) for value in general]


def test_a_scan_finds_the_timestamps_the_decoder_would_read_otherwise():
    from journeyflow.readers import rfc3339_timestamps_agree

    lines = [
        b'{"ts": "2026-10-01T10:00:00Z"}',
        b'{"ts": "2026-10-01T10:00:00.123456+02:00"}\n{"note": "fizz buzzer", "n": 1.25}',
        b'{"ts": "2026-10-01T10:00:00z"}',
        b'{"ts": "2026-10-01T10:00:00.1234567Z"}',
    ]
    assert [rfc3339_timestamps_agree(line) for line in lines] == [True, True, False, False]


def test_decoded_timestamps_equal_the_general_rules_where_the_scan_allows_them():
    from journeyflow.readers import fast_json_coercer

    fast = fast_json_coercer(NARROW_SPEC, utf8=True)
    line = b'{"id": "a", "ts": "2026-10-01T10:00:00.25-02:30"}'
    typed, untyped = fast(line, typed_timestamps=True), fast(line)
    assert typed == untyped and typed[2].utcoffset() == untyped[2].utcoffset()
    naive = fast(b'{"id": "a", "ts": "2026-10-01 10:00:00"}', typed_timestamps=True)
    assert naive[2] == datetime(2026, 10, 1, 10, tzinfo=UTC)


def test_fast_decoder_takes_ordinary_records_and_declines_unusual_ones():
    from journeyflow.readers import fast_json_coercer

    fast = fast_json_coercer(WIDE_SPEC)
    ordinary = [
        '{"id": "a", ' + TS + "}",
        '{"id":"a","ts":"2026-10-01T10:00:00+02:00","amount":10.50,"qty":3,"paid":true}',
        '{"id": "a", "note": " padded ", "x": {"y": 1}, ' + TS + "}",
        '{"id": "first", "id": "last", ' + TS + "}",
    ]
    assert [fast(line) is not None for line in ordinary] == [True] * len(ordinary)
    assert fast(ordinary[-1])[0] == "last"
    unusual = [
        '{"id": "a", "note": "   ", ' + TS + "}",
        '{"id": 5, ' + TS + "}",
        '{"id": "a", "ts": NaN}',
        '{"id": "a", "ts": "2026-10-01T10:00:00z"}',
        "[1]",
        "{",
    ]
    assert [fast(line) for line in unusual] == [None] * len(unusual)


def test_jsonl_rows_match_the_general_path_line_for_line(tmp_path):
    path = tmp_path / "events.jsonl"
    not_json = ["not json", '{"id": "a", "ts": Infinity}', '{"id": "a"', "[1]", "null"]
    nul = '{"id": "n", ' + TS + ', "note": "nul \\u0000 here"}'
    lines = [*FAST_PATH_CASES, "", "   ", *not_json, nul]
    path.write_text("\n".join(lines) + "\r\n", encoding="utf-8")
    rows = list(read_source_file(path, WIDE_SPEC))
    numbers = [row.line_number for row in rows]
    assert numbers == [n for n, line in enumerate(lines, start=1) if line.strip()]
    for row in rows:
        line = lines[row.line_number - 1]
        if line in not_json:
            assert isinstance(row, RejectedRow) and row.raw_text == line
            assert "unparseable JSON" in row.reason or "expected an object" in row.reason
        elif line == nul:
            assert isinstance(row, RejectedRow) and "cannot store" in row.reason
        elif isinstance(row, GoodRow):
            assert row.values == _general_values(line)
            assert row.record_json == line
        else:
            assert row.reason == str(_general_values(line))
            assert row.raw_text == line


def test_a_lone_surrogate_escape_is_rejected_with_a_reason_and_a_pair_is_kept(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text(
        '{"order_id": "a", "amount": 1, "ts": 1, "note": "half \\ud800 pair"}\n'
        '{"order_id": "b\\uDC01", "amount": 1, "ts": 1}\n'
        '{"order_id": "c", "amount": 1, "ts": 1, "note": "smile \\ud83d\\ude00"}\n'
        '{"order_id": "d", "amount": 1, "ts": 1, "note": "not an escape \\\\ud800"}\n'
    )
    lone_high, lone_low, pair, backslash = list(read_source_file(path, _with_format("jsonl")))
    for row in (lone_high, lone_low):
        assert isinstance(row, RejectedRow) and "lone UTF-16 surrogate" in row.reason
    assert lone_high.raw_text == path.read_text().splitlines()[0]
    assert isinstance(pair, GoodRow) and pair.record["note"] == "smile \U0001f600"
    assert isinstance(backslash, GoodRow) and backslash.record["note"] == "not an escape \\ud800"
