"""The HTML journey report: one self-contained page built from the published reporting schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from html import escape
from pathlib import Path
from string import Template

import psycopg
from psycopg.rows import dict_row

from journeyflow import report_charts as charts

REPORT_FILE = "journey_report.html"
TEMPLATE = Path(__file__).with_name("templates") / "journey_report.html"
SCHEMA = "reporting"
TREND_METRICS = (
    ("active_customers", "Active customers", 0),
    ("new_customers", "New customers", 0),
    ("lapsed_customers", "Customers who lapsed (churn risk)", 0),
    ("orders", "Completed orders", 0),
    ("revenue", "Revenue", 0),
    ("purchase_rate", "Purchase rate (ordering / active)", 3),
    ("average_order_value", "Average order value", 2),
)


class ReportDataMissing(RuntimeError):
    """The reporting schema has not been published yet (or a table is empty)."""


@dataclass(frozen=True)
class Chart:
    """One figure of the page: its key (for tests), heading, explanation and SVG."""

    key: str
    title: str
    caption: str
    svg: str


def _rows(conn: psycopg.Connection, query: str) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query.replace("{schema}", SCHEMA)).fetchall()


def _funnel(conn: psycopg.Connection) -> Chart:
    rows = _rows(
        conn,
        "select stage, sum(entered) as entered, sum(converted_to_next) as converted,"
        " sum(dropped_off) as dropped_off from {schema}.rpt_funnel_weekly"
        " group by stage, stage_order order by stage_order",
    )
    stages = [
        charts.FunnelStage(
            row["stage"],
            int(row["entered"]),
            int(row["converted"]),
            None if row["dropped_off"] is None else int(row["dropped_off"]),
        )
        for row in rows
    ]
    svg = charts.funnel_chart(stages) if any(stage.entered for stage in stages) else ""
    return Chart(
        "funnel",
        "Funnel and drop-off",
        "Customers who reached each journey stage, and how many of them moved on or dropped "
        "off (so far). Stages may be skipped, e.g. a first order without browsing; lapsed "
        "customers (no activity for a while) are shown last, with how many came back.",
        svg,
    )


def _stage_flow(conn: psycopg.Connection) -> Chart:
    rows = _rows(
        conn,
        "select from_stage, to_stage, sum(customers) as customers"
        " from {schema}.rpt_stage_flow group by from_stage, to_stage",
    )
    flows = [charts.Flow(row["from_stage"], row["to_stage"], int(row["customers"])) for row in rows]
    return Chart(
        "stage_flow",
        "Stage flow",
        "How customers move between stages over the whole history, into and out of lapsed "
        "too; band width = customers.",
        charts.sankey_chart(flows),
    )


def _ranking_rows(conn: psycopg.Connection) -> list[dict]:
    """The latest week with the most journeys scored (settled), lowest score first."""
    return _rows(
        conn,
        "select * from {schema}.rpt_journey_success_ranking where week_start ="
        " (select max(week_start) from {schema}.rpt_journey_success_ranking"
        "  where journeys_scored > 0 and journeys_scored ="
        "  (select max(journeys_scored) from {schema}.rpt_journey_success_ranking))"
        " order by score_rank nulls last, journey",
    )


def _ranking_detail(row: dict) -> str:
    return (
        f"{charts.percent(_float(row['completion_rate']))} of {row['episodes_settled']:,} "
        "settled episodes reached the goal, median "
        f"{charts.number(_float(row['median_hours_to_goal']), 1)} h to goal vs baseline "
        f"{charts.number(_float(row['baseline_hours_to_goal']), 1)} h, friction "
        f"{charts.percent(_float(row['friction_rate']))}, {row['still_open']:,} still open"
    )


def _ranking(rows: list[dict]) -> Chart:
    scores = [
        charts.JourneyScore(
            row["journey"],
            float(row["success_score"]),
            row["is_underperforming"],
            _ranking_detail(row),
        )
        for row in rows
        if row["success_score"] is not None
    ]
    week = rows[0]["week_start"].isoformat() if rows else "-"
    version = rows[0]["score_version"] if rows else "-"
    return Chart(
        "journey_ranking",
        f"Journey success ranking, week of {week}",
        "Success score 0-100 per journey for the episodes that started that week and are past "
        "their timeout, lowest first (red: below target): 50 % completion, 30 % time to goal "
        "against the journey's own recent median, 20 % friction (support contacts, "
        f"unsubscribes, bounces). Formula {version}; the latest week with the most journeys "
        "scored.",
        charts.ranking_chart(scores),
    )


def _ranking_table(rows: list[dict]) -> str:
    head = (
        "<tr><th>journey</th><th>rank</th><th>score</th><th>change</th><th>started</th>"
        "<th>settled</th><th>completed</th><th>abandoned</th><th>open</th>"
        "<th>median h to goal</th>"
        "<th>baseline h</th><th>friction</th></tr>"
    )
    body = "".join(
        "<tr>"
        f"<td>{escape(row['journey'])}</td><td>{charts.number(row['score_rank'])}</td>"
        f"<td>{charts.number(_float(row['success_score']), 1)}</td>"
        f"<td>{charts.number(_float(row['score_change']), 1)}</td>"
        f"<td>{row['episodes_started']:,}</td><td>{row['episodes_settled']:,}</td>"
        f"<td>{row['completed']:,}</td>"
        f"<td>{row['abandoned']:,}</td><td>{row['still_open']:,}</td>"
        f"<td>{charts.number(_float(row['median_hours_to_goal']), 1)}</td>"
        f"<td>{charts.number(_float(row['baseline_hours_to_goal']), 1)}</td>"
        f"<td>{charts.percent(_float(row['friction_rate']))}</td>"
        "</tr>"
        for row in rows
    )
    return f'<table class="numbers">{head}{body}</table>'


def _trends(conn: psycopg.Connection) -> list[Chart]:
    rows = _rows(conn, "select * from {schema}.rpt_kpi_trends order by week_start")
    found = []
    for column, title, decimals in TREND_METRICS:
        points = [
            (
                row["week_start"].isoformat(),
                None if row[column] is None else float(row[column]),
            )
            for row in rows
        ]
        found.append(
            Chart(
                f"trend_{column}",
                title,
                "Per week (Monday start, UTC)",
                charts.line_chart(title, points, decimals),
            )
        )
    return found


def _lift_detail(row: dict) -> str:
    return (
        f"{row['converted']:,}/{row['entries']:,} treated converted "
        f"({charts.percent(_float(row['conversion_rate']))}) vs "
        f"{row['control_converted']:,}/{row['control_entries']:,} control "
        f"({charts.percent(_float(row['control_conversion_rate']))})"
    )


def _float(value) -> float | None:
    return None if value is None else float(value)


def _campaign_rows(conn: psycopg.Connection) -> list[dict]:
    return _rows(
        conn,
        "select * from {schema}.rpt_campaign_performance"
        " order by campaign_id, case when variant = 'all' then 0 else 1 end, variant",
    )


def _lift(rows: list[dict]) -> Chart:
    lifts = [
        charts.Lift(
            row["campaign_id"] if row["variant"] == "all" else f"  variant {row['variant']}",
            _float(row["lift"]),
            _float(row["lift_ci_low"]),
            _float(row["lift_ci_high"]),
            _lift_detail(row),
        )
        for row in rows
        if row["variant"] == "all" or _variants(rows, row["campaign_id"]) > 1
    ]
    caption = (
        "Conversion-rate difference between people the campaign was meant for and its control "
        "group, with the 95 % confidence interval (green: reliably positive, red: reliably "
        "negative, grey: not distinguishable from zero)."
    )
    if rows and not any(row["converted"] or row["control_converted"] for row in rows):
        caption += " Nobody has converted within the attribution windows yet."
    return Chart("campaign_lift", "Campaign lift", caption, charts.lift_chart(lifts))


def _variants(rows: list[dict], campaign_id: str) -> int:
    return sum(row["campaign_id"] == campaign_id and row["variant"] != "all" for row in rows)


def _campaign_table(rows: list[dict]) -> str:
    head = (
        "<tr><th>campaign</th><th>variant</th><th>entries</th><th>sent</th><th>opened</th>"
        "<th>converted</th><th>control</th><th>lift</th><th>95 % CI</th></tr>"
    )
    body = "".join(
        "<tr>"
        f"<td>{escape(row['campaign_id'])}</td><td>{escape(row['variant'])}</td>"
        f"<td>{row['entries']:,}</td><td>{row['sent']:,}</td><td>{row['opened']:,}</td>"
        f"<td>{row['converted']:,} ({charts.percent(_float(row['conversion_rate']))})</td>"
        f"<td>{row['control_converted']:,}/{row['control_entries']:,}</td>"
        f"<td>{charts.percent(_float(row['lift']), 2)}</td>"
        f"<td>[{charts.percent(_float(row['lift_ci_low']), 2)}, "
        f"{charts.percent(_float(row['lift_ci_high']), 2)}]</td>"
        "</tr>"
        for row in rows
    )
    return f'<table class="numbers">{head}{body}</table>'


def _health(conn: psycopg.Connection) -> Chart:
    rows = _rows(
        conn,
        "select gate, table_name, checks, checks_passed, errors, warnings, unexpected_rows,"
        " status, validated_run_id, validated_at from {schema}.rpt_data_health h"
        " where validated_at = (select max(validated_at) from {schema}.rpt_data_health l"
        "  where l.gate = h.gate) order by gate, table_name",
    )
    cells = "".join(
        f'<div class="mark health {row["status"]}" data-tip="{escape(_health_tip(row))}">'
        f"<span>{escape(row['table_name'])}</span><b>{escape(row['status'])}</b></div>"
        for row in rows
    )
    checks = sum(row["checks"] for row in rows)
    errors = sum(row["errors"] for row in rows)
    warnings = sum(row["warnings"] for row in rows)
    summary = (
        f"<p>{checks:,} checks on {len(rows)} tables: {errors:,} errors (these stop the "
        f"pipeline), {warnings:,} warnings (recorded, the run goes on).</p>"
        if rows
        else ""
    )
    return Chart(
        "data_health",
        "Data health",
        "Latest Great Expectations results per quality gate and table.",
        f'{summary}<div class="health-grid">{cells}</div>' if rows else "",
    )


def _health_tip(row: dict) -> str:
    return (
        f"{row['gate']} · {row['table_name']}: {row['checks_passed']}/{row['checks']} passed, "
        f"{row['errors']} errors, {row['warnings']} warnings, "
        f"{row['unexpected_rows']:,} unexpected rows (run {row['validated_run_id']})"
    )


def _refresh(conn: psycopg.Connection) -> dict:
    rows = _rows(
        conn,
        "select max(refreshed_at) as refreshed_at, max(run_id) as run_id"
        " from {schema}.rpt_kpi_trends",
    )
    if not rows or rows[0]["refreshed_at"] is None:
        raise ReportDataMissing(f"{SCHEMA}.rpt_kpi_trends is empty: publish reporting first")
    return rows[0]


def _figure(chart: Chart, wide: bool = True) -> str:
    if not chart.svg:
        content = '<p class="empty">No data yet.</p>'
    else:
        content = chart.svg
    size = "wide" if wide else "small"
    return (
        f'<figure class="chart {size}" data-chart="{chart.key}"'
        f' data-empty="{str(not chart.svg).lower()}">'
        f"<h3>{escape(chart.title)}</h3><figcaption>{escape(chart.caption)}</figcaption>"
        f"{content}</figure>"
    )


def render_report(conn: psycopg.Connection) -> str:
    """The whole page as HTML text; reads only the published reporting tables."""
    refresh = _refresh(conn)
    campaigns = _campaign_rows(conn)
    ranking = _ranking_rows(conn)
    trends = "".join(_figure(chart, wide=False) for chart in _trends(conn))
    sections = {
        "funnel": _figure(_funnel(conn)),
        "flow": _figure(_stage_flow(conn)),
        "journeys": _figure(_ranking(ranking)) + _ranking_table(ranking),
        "trends": f'<div class="grid">{trends}</div>',
        "lift": _figure(_lift(campaigns)) + _campaign_table(campaigns),
        "health": _figure(_health(conn)),
    }
    return Template(TEMPLATE.read_text()).substitute(
        refreshed_at=escape(refresh["refreshed_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        run_id=escape(refresh["run_id"]),
        **sections,
    )


def write_report(conn: psycopg.Connection, path: Path) -> Path:
    """Render the report and replace the file at `path` in one rename (no half-written page)."""
    html = render_report(conn)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
