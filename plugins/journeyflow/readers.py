"""Read source files into typed rows, setting aside malformed records with a reason."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from journeyflow.sources import ColumnSpec, SourceSpec

TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}


class SourceFileError(ValueError):
    """A whole file is not what its source declares (wrong format or header)."""


@dataclass(frozen=True)
class GoodRow:
    line_number: int
    values: tuple[Any, ...]
    record: dict[str, Any]


@dataclass(frozen=True)
class RejectedRow:
    line_number: int
    reason: str
    raw_text: str


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=UTC)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _parse_numeric(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _parse_integer(value: Any) -> int:
    number = _parse_numeric(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _parse_text(value: Any) -> str:
    if isinstance(value, dict | list):
        raise ValueError("expected a scalar, got a nested object")
    return str(value)


PARSERS = {
    "text": _parse_text,
    "timestamp": _parse_timestamp,
    "numeric": _parse_numeric,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def coerce_value(column: ColumnSpec, value: Any) -> Any:
    """Convert one source value to the column's type; None for blank optional values."""
    if _is_blank(value):
        if column.required:
            raise ValueError(f"missing required field '{column.name}'")
        return None
    try:
        return PARSERS[column.type](value)
    except (ValueError, InvalidOperation, OverflowError, OSError) as error:
        raise ValueError(
            f"field '{column.name}': {value!r} is not a valid {column.type}"
        ) from error


def coerce_record(spec: SourceSpec, record: Any) -> tuple[Any, ...]:
    """Typed values of a record in the source's column order; ValueError names the problem."""
    if not isinstance(record, dict):
        raise ValueError(f"expected an object, got {type(record).__name__}")
    return tuple(coerce_value(column, record.get(column.name)) for column in spec.columns)


def _jsonl_records(handle: io.TextIOBase) -> Iterator[tuple[int, str, Any]]:
    for number, line in enumerate(handle, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            yield number, text, json.loads(text)
        except json.JSONDecodeError as error:
            yield number, text, ValueError(f"unparseable JSON: {error.msg} at column {error.colno}")


def _json_records(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, str, Any]]:
    try:
        document = json.load(handle)
    except json.JSONDecodeError as error:
        raise SourceFileError(f"{path}: expected a JSON array of objects, {error}") from error
    if not isinstance(document, list):
        raise SourceFileError(
            f"{path}: expected a JSON array of objects, got {type(document).__name__}"
        )
    for number, item in enumerate(document, start=1):
        yield number, json.dumps(item, sort_keys=True), item


def _csv_records(
    handle: io.TextIOBase, path: Path, spec: SourceSpec
) -> Iterator[tuple[int, str, Any]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    required = [column.name for column in spec.columns if column.required]
    if header is None or not set(required) <= {name.strip() for name in header}:
        raise SourceFileError(
            f"{path}: CSV header {header!r} lacks required columns; expected at least {required}"
        )
    names = [name.strip() for name in header]
    for values in reader:
        number = reader.line_num
        raw_text = ",".join(values)
        if len(values) != len(names):
            yield number, raw_text, ValueError(f"expected {len(names)} fields, got {len(values)}")
            continue
        yield number, raw_text, dict(zip(names, values, strict=True))


def _records(path: Path, spec: SourceSpec, handle: io.TextIOBase) -> Iterator[tuple[int, str, Any]]:
    if spec.format == "jsonl":
        return _jsonl_records(handle)
    if spec.format == "json":
        return _json_records(handle, path)
    return _csv_records(handle, path, spec)


def read_source_file(path: Path, spec: SourceSpec) -> Iterator[GoodRow | RejectedRow]:
    """Yield every record of a file as a typed GoodRow or a RejectedRow with its reason."""
    with _open_text(path) as handle:
        for number, raw_text, parsed in _records(path, spec, handle):
            if isinstance(parsed, Exception):
                yield RejectedRow(number, str(parsed), raw_text)
                continue
            try:
                yield GoodRow(number, coerce_record(spec, parsed), parsed)
            except ValueError as error:
                yield RejectedRow(number, str(error), raw_text)
