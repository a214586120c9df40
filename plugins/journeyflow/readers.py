"""Read source records into typed rows, streaming, setting aside malformed records with a reason."""

from __future__ import annotations

import csv
import gzip
import io
import json
import operator
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import msgspec

from journeyflow.sources import ColumnSpec, SourceSpec

TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}
CHUNK_CHARS = 1 << 16
NUL_ESCAPE = "\\u0000"
MAX_RECORD_CHARS = 64 << 20
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class SourceFileError(ValueError):
    """A whole file is not what its source declares (wrong format or header)."""


class GoodRow(NamedTuple):
    """A record that passed every rule: typed values in column order plus the record as JSON."""

    line_number: int
    values: tuple[Any, ...]
    record_json: str
    origin: str | None = None

    @property
    def record(self) -> Any:
        """The record as Python values (decoded on demand: the loader only needs the JSON)."""
        return json.loads(self.record_json)


class RejectedRow(NamedTuple):
    """A record set aside, with why and the text as it arrived."""

    line_number: int
    reason: str
    raw_text: str
    origin: str | None = None


class SourceRecord(NamedTuple):
    """One parsed record before typing: `parsed` is the value, or the error that stopped it."""

    number: int
    raw_text: str
    parsed: Any
    record_json: str | None = None  # None: serialise `parsed`; else raw_text is already JSON
    origin: str | None = None


# --- value parsing ------------------------------------------------------------------------


def _iso_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp; one without a time zone is taken as UTC."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_timestamp(value: Any) -> datetime:
    if type(value) is str:
        try:
            return _iso_timestamp(value)
        except ValueError:
            pass
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
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
    if type(value) is int:
        return value
    number = _parse_numeric(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _parse_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, dict | list):
        raise ValueError("expected a scalar, got a nested object")
    return str(value)


PARSERS: dict[str, Callable[[Any], Any]] = {
    "text": _parse_text,
    "timestamp": _parse_timestamp,
    "numeric": _parse_numeric,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
}
PARSE_ERRORS = (ValueError, InvalidOperation, OverflowError, OSError, TypeError)
# The fast path hands timestamps over as strings: the ISO form first, the general rules otherwise.
FAST_PARSERS: dict[str, Callable[[Any], Any]] = {"timestamp": _iso_timestamp}


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
    except PARSE_ERRORS as error:
        raise ValueError(
            f"field '{column.name}': {value!r} is not a valid {column.type}"
        ) from error


def record_coercer(spec: SourceSpec) -> Callable[[Any], tuple[Any, ...]]:
    """A fast function turning a record into typed values in column order (ValueError if not)."""
    plan = [(column.name, PARSERS[column.type], column) for column in spec.columns]

    def coerce(record: Any) -> tuple[Any, ...]:
        if type(record) is not dict:
            raise ValueError(f"expected an object, got {type(record).__name__}")
        values = []
        for name, parse, column in plan:
            value = record.get(name)
            if value is None or value == "" or (type(value) is str and value.isspace()):
                if column.required:
                    raise ValueError(f"missing required field '{name}'")
                values.append(None)
                continue
            try:
                values.append(parse(value))
            except PARSE_ERRORS as error:
                raise ValueError(
                    f"field '{name}': {value!r} is not a valid {column.type}"
                ) from error
        return tuple(values)

    return coerce


def coerce_record(spec: SourceSpec, record: Any) -> tuple[Any, ...]:
    """Typed values of a record in the source's column order; ValueError names the problem."""
    return record_coercer(spec)(record)


def _typed_row(
    coerce: Callable[[Any], tuple[Any, ...]], record: SourceRecord
) -> GoodRow | RejectedRow:
    """Type one parsed record: a GoodRow, or a RejectedRow naming what is wrong."""
    number, raw_text, parsed, record_json, origin = record
    if isinstance(parsed, Exception):
        return RejectedRow(number, str(parsed), raw_text, origin)
    try:
        values = coerce(parsed)
    except ValueError as error:
        return RejectedRow(number, str(error), raw_text, origin)
    if record_json is None:
        record_json = json.dumps(parsed, ensure_ascii=False, default=str)
    return _good_row(number, values, record_json, raw_text, origin)


def _holds_lone_surrogate(record_json: str) -> bool:
    """True when the record holds half of a UTF-16 surrogate pair, as an escape or a character."""
    if not record_json.isascii():
        try:
            record_json.encode()
        except UnicodeEncodeError:
            return True
    if not SURROGATE_ESCAPE.search(record_json):
        return False
    try:  # an escape that is not half of a pair (a lone one) decodes to a character UTF-8 lacks
        json.dumps(json.loads(record_json), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    except ValueError:
        return False
    return False


def _good_row(
    number: int, values: tuple[Any, ...], record_json: str, raw_text: str, origin: str | None
) -> GoodRow | RejectedRow:
    if NUL_ESCAPE in record_json:
        reason = "contains \\u0000, which PostgreSQL cannot store"
        return RejectedRow(number, reason, raw_text.replace("\x00", ""), origin)
    if _holds_lone_surrogate(record_json):
        reason = "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which PostgreSQL cannot store"
        return RejectedRow(number, reason, raw_text.encode(errors="replace").decode(), origin)
    return GoodRow(number, values, record_json, origin)


def typed_rows(
    spec: SourceSpec, records: Iterable[SourceRecord]
) -> Iterator[GoodRow | RejectedRow]:
    """Type every parsed record: a GoodRow, or a RejectedRow naming what is wrong."""
    coerce = record_coercer(spec)
    for record in records:
        yield _typed_row(coerce, record)


# --- the fast path for JSON objects ---------------------------------------------------------

STRING_TYPES = ("text", "timestamp")
NonEmptyText = Annotated[str, msgspec.Meta(min_length=1)]
FAST_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def _fast_field(index: int, column: ColumnSpec, typed_timestamps: bool = False) -> tuple:
    """A decoder field: text and timestamps as non-empty strings, other types as any JSON.

    With `typed_timestamps`, timestamps are decoded to datetimes by the decoder itself (RFC 3339).
    """
    if column.type not in STRING_TYPES:
        return (f"c{index}", Any, None)
    field_type = datetime if typed_timestamps and column.type == "timestamp" else NonEmptyText
    if column.required:
        return (f"c{index}", field_type)
    return (f"c{index}", field_type | None, None)


def _picker(indexes: list[int]) -> Callable[[tuple], tuple]:
    """A C-level function taking the values at `indexes` out of a tuple, as a tuple."""
    if len(indexes) > 1:
        return operator.itemgetter(*indexes)
    return lambda values: tuple(values[index] for index in indexes)


SPACES_BETWEEN_QUOTES = re.compile(rb'" +"')


def may_hold_blank(text: bytes) -> bool:
    """False when no JSON string in the UTF-8 `text` can be whitespace only (a few byte scans).

    JSON strings hold no raw control characters, so a whitespace-only string is spaces between
    two quotes, or holds an escape or a non-ASCII character. Outside strings, two quotes have a
    comma or a colon between them, so spaces between quotes are a blank string (or a line that
    is not JSON, which the decoder rejects anyway). Meant for a whole chunk of lines at once.
    """
    return b"\\" in text or not text.isascii() or SPACES_BETWEEN_QUOTES.search(text) is not None


def _fast_decoder(spec: SourceSpec, typed_timestamps: bool = False) -> Callable[[str], Any]:
    """Decode a JSON object's text straight to its declared fields (a struct, in column order)."""
    fields = [
        _fast_field(index, column, typed_timestamps) for index, column in enumerate(spec.columns)
    ]
    rename = {f"c{index}": column.name for index, column in enumerate(spec.columns)}
    record_type = msgspec.defstruct("FastRecord", fields, rename=rename, kw_only=True)
    return msgspec.json.Decoder(record_type).decode


def fast_json_coercer(
    spec: SourceSpec, utf8: bool = False
) -> Callable[..., tuple[Any, ...] | None]:
    """Typed values of a JSON object's text in one C-level decode, or None for the general path.

    It accepts only records that the general rules (`record_coercer` over `json.loads`) accept,
    and gives the same values: text columns must be non-blank strings (or null when optional),
    the other columns go through the same parsers. Anything else (not JSON, not an object, a
    number in a text column, a blank or invalid value) gives None: the general path then decides
    and names the reason. The text may be a str or UTF-8 bytes (`utf8`: the caller's choice).

    Callers that scanned a whole chunk of lines first (see `may_hold_blank` and
    `rfc3339_timestamps_agree`) may pass `check_blanks=False` or `typed_timestamps=True`.
    """
    decode = _fast_decoder(spec)
    decode_typed = _fast_decoder(spec, typed_timestamps=True)
    astuple = msgspec.structs.astuple
    indexes = {kind: [] for kind in PARSERS}
    for index, column in enumerate(spec.columns):
        indexes[column.type].append(index)
    strings = _picker(sorted(indexes["text"] + indexes["timestamp"]))
    texts = _picker(indexes["text"])
    timestamps = indexes["timestamp"]
    parsed = [
        (index, FAST_PARSERS.get(column.type, PARSERS[column.type]), column.required)
        for index, column in enumerate(spec.columns)
        if column.type != "text"
    ]
    parsed_untyped = [plan for plan in parsed if plan[0] not in timestamps]

    def coerce(
        text: str | bytes, check_blanks: bool = True, typed_timestamps: bool = False
    ) -> tuple[Any, ...] | None:
        if typed_timestamps:
            try:
                values = astuple(decode_typed(text))
            except FAST_DECODE_ERRORS:
                pass  # a timestamp RFC 3339 lacks, say: the strings decide below
            else:
                if not (check_blanks and _holds_blank(texts(values))):
                    return _parse_values(_as_utc(values, timestamps), parsed_untyped)
        try:
            values = astuple(decode(text))
        except FAST_DECODE_ERRORS:
            return None
        if check_blanks and _holds_blank(strings(values)):
            return None  # a blank string: required or not, the general rules decide
        return _parse_values(values, parsed)

    return coerce


def _holds_blank(strings: tuple) -> bool:
    """Whether a whitespace-only string is among these non-empty strings or Nones."""
    for value in strings:
        if value is not None and value.isspace():
            return True
    return False


def _as_utc(values: tuple, timestamps: list[int]) -> tuple:
    """The decoded values with every datetime lacking a time zone taken as UTC."""
    for index in timestamps:
        value = values[index]
        if value is not None and value.tzinfo is None:
            values = (*values[:index], value.replace(tzinfo=UTC), *values[index + 1 :])
    return values


def _parse_values(values: tuple, parsed: list) -> tuple | None:
    """Values with the `parsed` columns through their parsers; None if one is invalid."""
    if not parsed:
        return values
    values = list(values)
    for index, parse, required in parsed:
        value = values[index]
        if value is None or value == "":
            if required:
                return None
            values[index] = None  # a blank optional value is null, as by the general rules
            continue
        try:
            values[index] = parse(value)
        except PARSE_ERRORS:
            return None
    return tuple(values)


FRACTION_BEYOND_MICROSECONDS = re.compile(rb"\.[0-9]{7}")
LOWERCASE_ZULU = re.compile(rb'z"')


def rfc3339_timestamps_agree(text: bytes) -> bool:
    """Whether the decoder's own timestamps equal the general rules' for every line of `text`.

    Where both accept a timestamp they agree, except for two forms only the decoder takes as
    given: a lower-case `z` zone (the general rules reject it) and more than six fraction digits
    (the decoder rounds them, the general rules cut them off). A scan of a whole chunk for
    either is cheap, and finding one merely sends that chunk's timestamps the string way.
    """
    return not (LOWERCASE_ZULU.search(text) or FRACTION_BEYOND_MICROSECONDS.search(text))


# --- JSON ---------------------------------------------------------------------------------


class _StrictDecoder:
    """json decoding that notes NaN/Infinity, which PostgreSQL jsonb cannot store."""

    def __init__(self) -> None:
        self.constants: list[str] = []
        self.decoder = json.JSONDecoder(parse_constant=self.constants.append)

    def raw_decode(self, text: str, position: int = 0) -> tuple[Any, int]:
        """(value, end); the value is a ValueError when the JSON holds NaN or Infinity."""
        self.constants.clear()
        value, end = self.decoder.raw_decode(text, position)
        if self.constants:
            return ValueError(f"unparseable JSON: {self.constants[0]} is not valid JSON"), end
        return value, end


def _parse_json_line(strict: _StrictDecoder, text: str) -> Any:
    """The value of one non-blank JSON line, or a ValueError naming why it is not JSON."""
    try:
        if "NaN" in text or "Infinity" in text:  # rare: let the strict decoder judge
            value, end = strict.raw_decode(text.strip())
            if end != len(text.strip()):
                raise json.JSONDecodeError("Extra data", text.strip(), end)
            return value
        return json.loads(text)
    except json.JSONDecodeError as error:
        return ValueError(f"unparseable JSON: {error.msg} at column {error.colno}")


class JsonLines:
    """Types JSON lines one by one: the fast decoder first, the general rules if it declines.

    It counts lines that parsed and lines that are not JSON at all, to tell a JSON Lines file
    with some broken lines from a file in another format.
    """

    def __init__(self, spec: SourceSpec, utf8: bool = False) -> None:
        self.fast = fast_json_coercer(spec, utf8)
        self.coerce = record_coercer(spec)
        self.strict = _StrictDecoder()
        self.parsed_any = 0
        self.unparseable = 0

    def general_row(self, number: int, text: str) -> GoodRow | RejectedRow | None:
        """A line the fast decoder declined, by the general rules; None for a blank line."""
        if not text.strip():
            return None
        value = _parse_json_line(self.strict, text)
        if isinstance(value, ValueError):
            self.unparseable += 1
            return RejectedRow(number, str(value), text)
        self.parsed_any += 1
        return _typed_row(self.coerce, SourceRecord(number, text, value, text))

    def check_any_json(self, path: Path) -> None:
        """SourceFileError when no line of the file is JSON."""
        check_any_json(path, self.parsed_any, self.unparseable)


def check_any_json(path: Path, parsed_any: int, unparseable: int) -> None:
    """SourceFileError for a JSON Lines file none of whose non-blank lines is JSON."""
    if unparseable and not parsed_any:
        raise SourceFileError(
            f"{path}: expected JSON Lines (one JSON object per line), but no line is JSON"
        )


def _jsonl_rows(
    handle: io.TextIOBase, path: Path, spec: SourceSpec
) -> Iterator[GoodRow | RejectedRow]:
    """Typed rows of a JSON Lines file: the fast decoder first, the general rules if it declines."""
    lines = JsonLines(spec)
    fast, general_row = lines.fast, lines.general_row
    new_row = tuple.__new__  # GoodRow(...) without its Python-level __new__: this is the hot loop
    fast_rows = 0
    for number, line in enumerate(handle, start=1):
        text = line.rstrip("\r\n")
        values = fast(text)
        if values is not None and NUL_ESCAPE not in text:
            fast_rows += 1
            yield new_row(GoodRow, (number, values, text, None))
            continue
        row = general_row(number, text)
        if row is not None:
            yield row
    lines.parsed_any += fast_rows
    lines.check_any_json(path)


class _ChunkedText:
    """A growing window over a text stream, so a JSON array is parsed without reading it whole."""

    def __init__(self, handle: io.TextIOBase) -> None:
        self.handle = handle
        self.buffer = ""
        self.position = 0
        self.eof = False

    def fill(self) -> bool:
        """Read another chunk; False at the end of the stream."""
        if self.eof:
            return False
        more = self.handle.read(CHUNK_CHARS)
        self.buffer = self.buffer[self.position :] + more
        self.position = 0
        self.eof = not more
        return bool(more)

    def next_char(self) -> str:
        """The next non-whitespace character (not consumed), or '' at the end."""
        while True:
            buffer, length = self.buffer, len(self.buffer)
            position = self.position
            while position < length and buffer[position] in " \t\r\n":
                position += 1
            self.position = position
            if position < length:
                return buffer[position]
            if not self.fill():
                return ""


def _json_array_records(handle: io.TextIOBase, path: Path) -> Iterator[SourceRecord]:
    """Elements of a JSON array, one at a time, each with its exact text."""
    expected = f"{path}: expected a JSON array of objects"
    text = _ChunkedText(handle)
    first = text.next_char()
    if first != "[":
        found = "an empty file" if not first else f"{first!r} at the start"
        raise SourceFileError(f"{expected}, found {found}")
    text.position += 1
    decoder = _StrictDecoder()
    number = 0
    while True:
        char = text.next_char()
        if char == "]":
            text.position += 1
            break
        if number:
            if char != ",":
                raise SourceFileError(f"{expected}; after element {number} expected ',' or ']'")
            text.position += 1
            text.next_char()
        number += 1
        while True:
            start = text.position
            try:
                value, end = decoder.raw_decode(text.buffer, start)
            except json.JSONDecodeError as error:
                if len(text.buffer) - start < MAX_RECORD_CHARS and text.fill():
                    continue
                raise SourceFileError(
                    f"{expected}; element {number} is not valid JSON: {error.msg}"
                ) from error
            if end == len(text.buffer) and text.fill():
                continue  # a number at the end of the chunk may go on in the next one
            break
        raw = text.buffer[start:end]
        text.position = end
        yield SourceRecord(number, raw, value, raw)
        if text.position > CHUNK_CHARS:
            text.buffer, text.position = text.buffer[text.position :], 0
    if text.next_char():
        raise SourceFileError(f"{expected}; unexpected data after the closing ']'")


# --- CSV ----------------------------------------------------------------------------------


def _csv_records(handle: io.TextIOBase, path: Path, spec: SourceSpec) -> Iterator[SourceRecord]:
    reader = csv.reader(handle)
    header = next(reader, None)
    required = [column.name for column in spec.columns if column.required]
    if header is None or not set(required) <= {name.strip() for name in header}:
        raise SourceFileError(
            f"{path}: CSV header {header!r} lacks required columns; expected at least {required}"
        )
    names = [name.strip() for name in header]
    width = len(names)
    for values in reader:
        number = reader.line_num
        raw_text = ",".join(values)
        if len(values) != width:
            reason = ValueError(f"expected {width} fields, got {len(values)}")
            yield SourceRecord(number, raw_text, reason)
            continue
        yield SourceRecord(number, raw_text, dict(zip(names, values, strict=True)))


# --- Parquet ------------------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """A value as plain JSON-compatible Python (NaN and NaT become None)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, datetime | date) or hasattr(value, "isoformat"):
        return None if value != value else value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): plain_value(item) for key, item in value.items()}
    if hasattr(value, "tolist"):
        return plain_value(value.tolist())
    if isinstance(value, list | tuple):
        return [plain_value(item) for item in value]
    return str(value)


def _parquet_records(path: Path, spec: SourceSpec) -> Iterator[SourceRecord]:
    """Rows of a Parquet file, one row group in memory at a time."""
    import fastparquet  # imported lazily: pulls in pandas

    try:
        parquet = fastparquet.ParquetFile(str(path))
    except Exception as error:  # noqa: BLE001 - any failure means "not a Parquet file"
        raise SourceFileError(f"{path}: expected a Parquet file: {error}") from error
    required = [column.name for column in spec.columns if column.required]
    missing = sorted(set(required) - set(parquet.columns))
    if missing:
        raise SourceFileError(
            f"{path}: Parquet columns {parquet.columns} lack required columns {missing}"
        )
    number = 0
    for frame in parquet.iter_row_groups():
        for row in frame.to_dict("records"):
            number += 1
            record = {str(name): plain_value(value) for name, value in row.items()}
            text = json.dumps(record, ensure_ascii=False)
            yield SourceRecord(number, text, record, text)


# --- files --------------------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller


FORMAT_NAMES = {
    "csv": "CSV",
    "jsonl": "JSON Lines",
    "json": "a JSON array",
    "parquet": "Parquet",
}


def _text_rows(
    handle: io.TextIOBase, path: Path, spec: SourceSpec
) -> Iterator[GoodRow | RejectedRow]:
    if spec.format == "jsonl":
        return _jsonl_rows(handle, path, spec)
    if spec.format == "json":
        return typed_rows(spec, _json_array_records(handle, path))
    return typed_rows(spec, _csv_records(handle, path, spec))


def read_source_file(path: Path, spec: SourceSpec) -> Iterator[GoodRow | RejectedRow]:
    """Every record of a file as a typed GoodRow or a RejectedRow with its reason, streamed.

    SourceFileError if the file is not what its source declares.
    """
    expected = f"expected {FORMAT_NAMES[spec.format]}"
    try:
        if spec.format == "parquet":
            yield from typed_rows(spec, _parquet_records(path, spec))
            return
        with _open_text(path) as handle:
            yield from _text_rows(handle, path, spec)
    except UnicodeDecodeError as error:
        raise SourceFileError(f"{path}: {expected} in UTF-8: {error}") from error
    except (gzip.BadGzipFile, zlib.error, EOFError) as error:
        raise SourceFileError(f"{path}: {expected}, gzip-compressed: {error}") from error
