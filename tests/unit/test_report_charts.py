"""The journey report's SVG charts: marks per data point, flows conserved, lift colours."""

from __future__ import annotations

import re

from journeyflow import report_charts as charts


def _marks(svg: str) -> list[str]:
    return re.findall(r'class="mark[^"]*" data-tip="([^"]*)"', svg)


def test_funnel_has_a_bar_per_stage_with_its_drop_off():
    svg = charts.funnel_chart(
        [
            charts.FunnelStage("awareness", 100, 60, 40),
            charts.FunnelStage("consideration", 60, 30, 30),
            charts.FunnelStage("decision", 30, 10, 20),
            charts.FunnelStage("retention", 10, 0, None),
        ]
    )
    assert len(_marks(svg)) == 4
    assert "60 moved on (60%), 40 dropped off (40%)" in svg
    assert "decision: 30 customers (30.0% of awareness)" in svg


def test_sankey_bands_follow_the_flows_and_nodes_carry_their_totals():
    svg = charts.sankey_chart(
        [
            charts.Flow("new", "awareness", 100),
            charts.Flow("awareness", "consideration", 70),
            charts.Flow("awareness", "decision", 5),
            charts.Flow("consideration", "decision", 40),
        ]
    )
    assert _marks(svg) == [
        "new → awareness: 100 customers",
        "awareness → consideration: 70 customers",
        "awareness → decision: 5 customers",
        "consideration → decision: 40 customers",
    ]
    assert ">decision 45<" in svg and ">awareness 100<" in svg


def test_empty_inputs_draw_nothing_so_the_page_says_no_data():
    assert charts.sankey_chart([]) == ""
    assert charts.line_chart("Orders", [("2026-01-05", None)]) == ""
    assert charts.lift_chart([charts.Lift("c", None, None, None, "")]) == ""


def test_line_chart_marks_every_week_with_a_value():
    svg = charts.line_chart("Revenue", [("2026-01-05", 10.0), ("2026-01-12", None), ("w3", 12.5)])
    assert _marks(svg) == ["week of 2026-01-05: 10", "week of w3: 12"]
    assert ">12<" in svg  # the axis top: the highest value


def test_lift_colour_says_whether_the_interval_excludes_zero():
    svg = charts.lift_chart(
        [
            charts.Lift("up", 0.1, 0.02, 0.18, "a"),
            charts.Lift("down", -0.1, -0.18, -0.02, "b"),
            charts.Lift("unclear", 0.05, -0.03, 0.13, "c"),
        ]
    )
    fills = re.findall(r'<circle class="mark" data-tip="([^:]+):[^"]*"[^>]* fill="(#\w+)"', svg)
    assert fills == [("up", "#10b981"), ("down", "#ef4444"), ("unclear", "#64748b")]
    assert "lift +10.00%, 95 % CI [+2.00%, +18.00%]" in svg


def test_text_is_escaped():
    svg = charts.sankey_chart([charts.Flow("new", "awareness", 1)])
    assert "<script" not in charts.lift_chart([charts.Lift("<script>", 0.0, 0.0, 0.0, "")])
    assert svg.startswith("<svg")


def test_compact_numbers_for_axes():
    assert charts.compact(10566.5) == "10.6k"
    assert charts.compact(2_500_000) == "2.5M"
    assert charts.compact(77) == "77"


def test_ranking_draws_a_bar_per_scored_journey_in_order_with_under_performers_in_red():
    svg = charts.ranking_chart(
        [
            charts.JourneyScore("support_resolution", 42.5, True, "3 of 8 finished"),
            charts.JourneyScore("first_purchase", 81.0, False, "6 of 7 finished"),
        ]
    )
    assert _marks(svg) == [
        "support_resolution: score 42.5; 3 of 8 finished",
        "first_purchase: score 81.0; 6 of 7 finished",
    ]
    bars = re.findall(r'<rect class="mark"[^>]* width="([\d.]+)"[^>]* fill="(#\w+)"', svg)
    assert [fill for _, fill in bars] == ["#ef4444", "#10b981"]
    assert float(bars[0][0]) < float(bars[1][0])
    assert charts.ranking_chart([]) == ""
