"""A files source whose folder is missing is down: extraction raises instead of loading nothing."""

from __future__ import annotations

import pytest

from journeyflow.loading import SourceUnavailable, discover_files, source_folder
from journeyflow.sources import ColumnSpec, SourceSpec


def spec(path: str) -> SourceSpec:
    return SourceSpec(
        name="orders",
        kind="files",
        path=path,
        format="csv",
        key="id",
        columns=(ColumnSpec("id", "text", True),),
    )


def test_source_folder_is_the_path_before_the_first_wildcard(tmp_path):
    assert source_folder(spec("orders/*.csv"), tmp_path) == tmp_path / "orders"
    assert source_folder(spec("shop/orders/2026-*/*.csv"), tmp_path) == tmp_path / "shop/orders"
    assert source_folder(spec("*.csv"), tmp_path) == tmp_path


def test_a_missing_folder_means_the_source_is_down(tmp_path):
    with pytest.raises(SourceUnavailable, match="orders: source folder .* is missing"):
        discover_files(spec("orders/*.csv"), tmp_path)


def test_an_empty_folder_is_up_with_nothing_new(tmp_path):
    (tmp_path / "orders").mkdir()
    assert discover_files(spec("orders/*.csv"), tmp_path) == []
