"""Touchpoint source declarations: parse and validate the sources YAML file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SOURCE_KINDS = {"files"}
FILE_FORMATS = {"csv", "jsonl", "json"}
COLUMN_TYPES = {
    "text": "text",
    "timestamp": "timestamptz",
    "numeric": "numeric",
    "integer": "bigint",
    "boolean": "boolean",
}
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
DEFAULT_MAX_REJECTED_RATIO = 0.05


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
class SourceSpec:
    name: str
    kind: str
    path: str
    format: str
    key: str
    columns: tuple[ColumnSpec, ...]
    max_rejected_ratio: float = DEFAULT_MAX_REJECTED_RATIO

    @property
    def table(self) -> str:
        return f"raw.{self.name}"

    @property
    def rejected_table(self) -> str:
        return f"raw.{self.name}__rejected"

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise SourceConfigError(f"{where}.{key}: required field is missing")
    return mapping[key]


def _choice(value: Any, allowed: set[str], where: str) -> str:
    if value not in allowed:
        raise SourceConfigError(f"{where}: {value!r} is not one of {sorted(allowed)}")
    return value


def _parse_column(name: str, body: Any, where: str) -> ColumnSpec:
    if not IDENTIFIER.match(str(name)):
        raise SourceConfigError(f"{where}: column name {name!r} is not a lower-case identifier")
    if not isinstance(body, dict):
        raise SourceConfigError(f"{where}: expected a mapping with `type`")
    column_type = _choice(_require(body, "type", where), set(COLUMN_TYPES), f"{where}.type")
    return ColumnSpec(name=name, type=column_type, required=bool(body.get("required", False)))


def _parse_source(name: str, body: Any) -> SourceSpec:
    where = f"sources.{name}"
    if not IDENTIFIER.match(str(name)):
        raise SourceConfigError(f"{where}: source name must be a lower-case identifier")
    if not isinstance(body, dict):
        raise SourceConfigError(f"{where}: expected a mapping")
    kind = _choice(_require(body, "kind", where), SOURCE_KINDS, f"{where}.kind")
    file_format = _choice(_require(body, "format", where), FILE_FORMATS, f"{where}.format")
    raw_columns = _require(body, "columns", where)
    if not isinstance(raw_columns, dict):
        raise SourceConfigError(f"{where}.columns: expected a mapping of column name to spec")
    columns = tuple(
        _parse_column(col, spec, f"{where}.columns.{col}") for col, spec in raw_columns.items()
    )
    key = _require(body, "key", where)
    if key not in {column.name for column in columns}:
        raise SourceConfigError(f"{where}.key: {key!r} is not one of the declared columns")
    ratio = float(body.get("max_rejected_ratio", DEFAULT_MAX_REJECTED_RATIO))
    if not 0 <= ratio <= 1:
        raise SourceConfigError(f"{where}.max_rejected_ratio: must be between 0 and 1")
    return SourceSpec(name, kind, _require(body, "path", where), file_format, key, columns, ratio)


def parse_sources(document: Any) -> dict[str, SourceSpec]:
    """Validate a parsed sources document and return the specs by name."""
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise SourceConfigError("sources: the file must have a top-level `sources` mapping")
    return {name: _parse_source(name, body) for name, body in document["sources"].items()}


def load_sources(path: Path) -> dict[str, SourceSpec]:
    """Read and validate the sources YAML file."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SourceConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return parse_sources(document)
    except SourceConfigError as error:
        raise SourceConfigError(f"{path}: {error}") from error
