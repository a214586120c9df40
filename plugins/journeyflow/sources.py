"""Touchpoint source declarations: parse and validate the sources YAML file."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

FILE_FORMATS = {"csv", "jsonl", "json", "parquet"}
PAGINATION_TYPES = {"none", "cursor", "page", "offset"}
COLUMN_TYPES = {
    "text": "text",
    "timestamp": "timestamptz",
    "numeric": "numeric",
    "integer": "bigint",
    "boolean": "boolean",
}
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_MAX_REJECTED_RATIO = 0.05
COMMON_FIELDS = {"kind", "key", "columns", "max_rejected_ratio", "description"}


class SourceConfigError(ValueError):
    """The sources file is invalid; the message names the YAML path of the problem."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    required: bool = False

    @property
    def sql_type(self) -> str:
        return COLUMN_TYPES[self.type]


@dataclass(frozen=True)
class Pagination:
    """How an HTTP API splits its results into pages."""

    type: str = "none"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"
    page_param: str = "page"
    offset_param: str = "offset"
    size_param: str = "limit"
    page_size: int = 100
    first_page: int = 1


@dataclass(frozen=True)
class HttpOptions:
    """A paginated JSON API read with a bearer token from an Airflow connection."""

    url: str
    connection: str | None = None
    records_path: str = ""
    pagination: Pagination = field(default_factory=Pagination)
    since_param: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0


@dataclass(frozen=True)
class PostgresOptions:
    """A table in an operational PostgreSQL database reached through an Airflow connection."""

    connection: str
    table: str
    soft_delete_column: str | None = None
    fetch_size: int = 5000


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    key: str
    columns: tuple[ColumnSpec, ...]
    path: str = ""
    format: str = ""
    max_rejected_ratio: float = DEFAULT_MAX_REJECTED_RATIO
    updated_at_column: str | None = None
    lookback: timedelta = timedelta(0)
    http: HttpOptions | None = None
    postgres: PostgresOptions | None = None
    verification_key: str | None = None

    @property
    def table(self) -> str:
        return f"raw.{self.name}"

    @property
    def rejected_table(self) -> str:
        return f"raw.{self.name}__rejected"

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def by_interval(self) -> bool:
        """True for sources extracted per data interval (APIs, tables), False for files."""
        return self.kind in {"http_json", "postgres_table"}

    def column(self, name: str) -> ColumnSpec:
        return next(column for column in self.columns if column.name == name)


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise SourceConfigError(f"{where}.{key}: required field is missing")
    return mapping[key]


def _choice(value: Any, allowed: set[str], where: str) -> str:
    if value not in allowed:
        raise SourceConfigError(f"{where}: {value!r} is not one of {sorted(allowed)}")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SourceConfigError(f"{where}: expected a mapping")
    return value


def _no_unknown_fields(body: dict[str, Any], allowed: set[str], where: str) -> None:
    for name in body:
        if name not in allowed:
            raise SourceConfigError(
                f"{where}.{name}: unknown field; expected one of {sorted(allowed)}"
            )


def _number(value: Any, where: str, kind: type = float, minimum: float = 0):
    try:
        number = kind(value)
    except (TypeError, ValueError) as error:
        raise SourceConfigError(f"{where}: {value!r} is not a number") from error
    if number < minimum:
        raise SourceConfigError(f"{where}: must be at least {minimum}, got {value!r}")
    return number


def parse_duration(value: Any, where: str) -> timedelta:
    """`90`, `90s`, `30m`, `2h` or `1d` as a timedelta."""
    match = DURATION.match(str(value).strip())
    if not match:
        raise SourceConfigError(f"{where}: {value!r} is not a duration like 30m, 2h or 1d")
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


def _check_base64(value: Any, where: str) -> None:
    try:
        base64.b64decode(str(value).strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise SourceConfigError(
            f"{where}: expected the base64 public key shown in SendGrid's webhook settings"
        ) from error


def _parse_column(name: str, body: Any, where: str) -> ColumnSpec:
    if not IDENTIFIER.match(str(name)):
        raise SourceConfigError(f"{where}: column name {name!r} is not a lower-case identifier")
    if not isinstance(body, dict):
        raise SourceConfigError(f"{where}: expected a mapping with `type`")
    _no_unknown_fields(body, {"type", "required", "description"}, where)
    column_type = _choice(_require(body, "type", where), set(COLUMN_TYPES), f"{where}.type")
    return ColumnSpec(name=name, type=column_type, required=bool(body.get("required", False)))


def _declared_column(spec_columns, name: Any, where: str, column_type: str | None = None) -> str:
    columns = {column.name: column for column in spec_columns}
    if name not in columns:
        raise SourceConfigError(f"{where}: {name!r} is not one of the declared columns")
    if column_type and columns[name].type != column_type:
        raise SourceConfigError(f"{where}: column {name!r} must be declared as {column_type}")
    return name


def _parse_pagination(body: Any, where: str) -> Pagination:
    if body is None:
        return Pagination()
    body = _mapping(body, where)
    _no_unknown_fields(body, set(Pagination.__dataclass_fields__), where)
    page_type = _choice(_require(body, "type", where), PAGINATION_TYPES, f"{where}.type")
    values = {key: value for key, value in body.items() if key != "type"}
    for name, minimum in (("page_size", 1), ("first_page", 0)):
        if name in values:
            values[name] = _number(values[name], f"{where}.{name}", int, minimum)
    for name in set(values) - {"page_size", "first_page"}:
        if not isinstance(values[name], str) or not values[name]:
            raise SourceConfigError(f"{where}.{name}: expected a non-empty string")
    defaults = {"page": {"size_param": "per_page"}}.get(page_type, {})
    return Pagination(type=page_type, **{**defaults, **values})


def _parse_http(body: dict[str, Any], where: str) -> HttpOptions:
    url = str(_require(body, "url", where))
    if not url.startswith(("http://", "https://", "/")):
        raise SourceConfigError(f"{where}.url: expected an http(s) URL or a path, got {url!r}")
    if url.startswith("/") and not body.get("connection"):
        raise SourceConfigError(f"{where}.url: a relative URL needs a `connection` with a host")
    params = body.get("params") or {}
    _mapping(params, f"{where}.params")
    incremental = body.get("incremental")
    since_param = None
    if incremental is not None:
        incremental = _mapping(incremental, f"{where}.incremental")
        since_param = str(_require(incremental, "param", f"{where}.incremental"))
    numbers = {
        name: _number(body[name], f"{where}.{name}")
        for name in ("timeout_seconds", "backoff_seconds", "max_backoff_seconds")
        if name in body
    }
    if "max_retries" in body:
        numbers["max_retries"] = _number(body["max_retries"], f"{where}.max_retries", int)
    return HttpOptions(
        url=url,
        connection=body.get("connection"),
        records_path=str(body.get("records_path") or ""),
        pagination=_parse_pagination(body.get("pagination"), f"{where}.pagination"),
        since_param=since_param,
        params=tuple((str(key), str(value)) for key, value in params.items()),
        **numbers,
    )


def _parse_postgres(body: dict[str, Any], columns, where: str) -> PostgresOptions:
    table = str(_require(body, "table", where))
    if not TABLE_NAME.match(table):
        raise SourceConfigError(f"{where}.table: {table!r} is not a [schema.]table name")
    soft_delete = body.get("soft_delete_column")
    if soft_delete is not None:
        _declared_column(columns, soft_delete, f"{where}.soft_delete_column")
    fetch_size = _number(body.get("fetch_size", 5000), f"{where}.fetch_size", int, 1)
    return PostgresOptions(
        connection=str(_require(body, "connection", where)),
        table=table,
        soft_delete_column=soft_delete,
        fetch_size=fetch_size,
    )


KIND_FIELDS = {
    "files": {"path", "format"},
    "sendgrid_events": {"path", "verification_key"},
    "http_json": {
        "url",
        "connection",
        "records_path",
        "pagination",
        "incremental",
        "params",
        "timeout_seconds",
        "max_retries",
        "backoff_seconds",
        "max_backoff_seconds",
    },
    "postgres_table": {
        "connection",
        "table",
        "incremental",
        "soft_delete_column",
        "fetch_size",
    },
}
SOURCE_KINDS = set(KIND_FIELDS)


def _parse_incremental(body: dict[str, Any], columns, where: str, required: bool):
    """(updated_at column, lookback) of an incremental source, or (None, 0)."""
    incremental = body.get("incremental")
    if incremental is None:
        if required:
            raise SourceConfigError(f"{where}.incremental: required field is missing")
        return None, timedelta(0)
    where = f"{where}.incremental"
    incremental = _mapping(incremental, where)
    allowed = {"field", "lookback"} | ({"param"} if body.get("kind") == "http_json" else set())
    _no_unknown_fields(incremental, allowed, where)
    column = _declared_column(
        columns, _require(incremental, "field", where), f"{where}.field", "timestamp"
    )
    lookback = parse_duration(incremental.get("lookback", 0), f"{where}.lookback")
    return column, lookback


def _parse_source(name: str, body: Any) -> SourceSpec:
    where = f"sources.{name}"
    if not IDENTIFIER.match(str(name)):
        raise SourceConfigError(f"{where}: source name must be a lower-case identifier")
    body = _mapping(body, where)
    kind = _choice(_require(body, "kind", where), SOURCE_KINDS, f"{where}.kind")
    _no_unknown_fields(body, COMMON_FIELDS | KIND_FIELDS[kind], where)
    if kind == "files":
        _choice(_require(body, "format", where), FILE_FORMATS, f"{where}.format")
    raw_columns = _require(body, "columns", where)
    if not isinstance(raw_columns, dict):
        raise SourceConfigError(f"{where}.columns: expected a mapping of column name to spec")
    columns = tuple(
        _parse_column(col, spec, f"{where}.columns.{col}") for col, spec in raw_columns.items()
    )
    key = _declared_column(columns, _require(body, "key", where), f"{where}.key")
    ratio = float(body.get("max_rejected_ratio", DEFAULT_MAX_REJECTED_RATIO))
    if not 0 <= ratio <= 1:
        raise SourceConfigError(f"{where}.max_rejected_ratio: must be between 0 and 1")
    common = {"name": name, "kind": kind, "key": key, "columns": columns}
    common["max_rejected_ratio"] = ratio
    if kind == "files":
        return SourceSpec(**common, path=str(_require(body, "path", where)), format=body["format"])
    if kind == "sendgrid_events":
        key_text = body.get("verification_key")
        if key_text:
            _check_base64(key_text, f"{where}.verification_key")
        return SourceSpec(
            **common,
            path=str(_require(body, "path", where)),
            format="json",
            verification_key=str(key_text).strip() if key_text else None,
        )
    updated_at, lookback = _parse_incremental(body, columns, where, kind == "postgres_table")
    common.update(updated_at_column=updated_at, lookback=lookback)
    if kind == "http_json":
        return SourceSpec(**common, http=_parse_http(body, where))
    return SourceSpec(**common, postgres=_parse_postgres(body, columns, where))


def parse_sources(document: Any) -> dict[str, SourceSpec]:
    """Validate a parsed sources document and return the specs by name."""
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise SourceConfigError("sources: the file must have a top-level `sources` mapping")
    return {name: _parse_source(name, body) for name, body in document["sources"].items()}


def load_sources(path: Path) -> dict[str, SourceSpec]:
    """Read and validate the sources YAML file."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SourceConfigError(f"{path}: cannot read the sources file: {error}") from error
    try:
        return parse_sources(document)
    except SourceConfigError as error:
        raise SourceConfigError(f"{path}: {error}") from error
