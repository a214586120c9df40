"""Gate rules: row-count tolerance, severities and the failure message a person reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from journeyflow.quality import (
    CheckResult,
    DataQualityError,
    _severity,
    enforce,
    minimum_row_count,
    row_count_parameter,
)


def check(success: bool, severity: str = "error", **changes) -> CheckResult:
    fields = dict(
        table="raw.orders",
        expectation="expect_column_values_to_be_between",
        column="amount",
        kwargs={"column": "amount", "min_value": 0},
        success=success,
        severity=severity,
        observed_value=None,
        unexpected_count=2,
        sample=[-5, -1],
    )
    fields.update(changes)
    return CheckResult(**fields)


def test_minimum_row_count_allows_growth_and_bounded_drops():
    assert minimum_row_count(None, 0.5) == 1
    assert minimum_row_count(1000, 0.5) == 500
    assert minimum_row_count(1000, 0.9) == 100
    assert minimum_row_count(0, 0.5) == 1


def test_row_count_parameter_names_are_gx_safe():
    assert row_count_parameter("raw.orders") == "min_rows__raw__orders"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("critical", "error"),
        ("warning", "warn"),
        ("info", "warn"),
        (None, "error"),
        ("FailureSeverity.WARNING", "warn"),
    ],
)
def test_gx_severity_maps_to_error_or_warn(level, expected):
    assert _severity(SimpleNamespace(severity=level)) == expected


def test_failed_error_check_raises_with_table_expectation_and_sample():
    with pytest.raises(DataQualityError) as failure:
        enforce("gate_raw", [check(True), check(False)])
    message = str(failure.value)
    assert message.startswith("gate_raw failed 1 check(s):")
    assert "raw.orders: expect_column_values_to_be_between(column='amount', min_value=0)" in message
    assert "2 unexpected value(s), sample [-5, -1]" in message


def test_warnings_are_reported_but_do_not_stop_the_run(caplog):
    outcome = enforce("gate_marts", [check(True), check(False, severity="warn")])
    assert outcome == {"checks": 2, "failed": 1, "errors": 0}
    assert "gate_marts warning: raw.orders" in caplog.text
