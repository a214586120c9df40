"""Inline SVG charts for the journey report: funnel, Sankey, trend lines, lift with intervals."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from journeyflow.stages import LAPSED, journey_stages

STAGE_COLOURS = {
    "new": "#94a3b8",
    "awareness": "#6366f1",
    "consideration": "#0ea5e9",
    "decision": "#10b981",
    "retention": "#f59e0b",
    LAPSED: "#ef4444",
}
OTHER_STAGE_COLOUR = "#64748b"  # stages added to the rules without a colour of their own


def stage_colour(stage: str) -> str:
    """The colour of a stage in every chart."""
    return STAGE_COLOURS.get(stage, OTHER_STAGE_COLOUR)


def flow_order() -> tuple[str, ...]:
    """Sankey columns: first touchpoint, the stages of the rules in order, then lapsed."""
    return ("new", *journey_stages())


def number(value: float | int | None, decimals: int = 0) -> str:
    """A number for people: thousands separators, fixed decimals, an en dash for none."""
    if value is None:
        return "–"
    return f"{value:,.{decimals}f}"


def compact(value: float, decimals: int = 0) -> str:
    """A short axis label: 1.2k, 3.4M; small numbers as they are."""
    for limit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return number(value, decimals)


def percent(value: float | None, decimals: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{decimals}f} %"


def _text(x: float, y: float, content: str, **attributes: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(content)}</text>'


def _mark(shape: str, tip: str, **attributes: str | float) -> str:
    """A data mark: counted by the browser test, with a tooltip shown by the page's script."""
    classes = " ".join(["mark", str(attributes.pop("class_", ""))]).strip()
    parts = "".join(
        f' {name.replace("_", "-")}="{value:.1f}"'
        if isinstance(value, float)
        else f' {name.replace("_", "-")}="{value}"'
        for name, value in attributes.items()
    )
    return f'<{shape} class="{classes}" data-tip="{escape(tip)}"{parts}/>'


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}"'
        f' preserveAspectRatio="xMidYMid meet">{"".join(body)}</svg>'
    )


@dataclass(frozen=True)
class FunnelStage:
    stage: str
    entered: int
    converted: int
    dropped_off: int | None


def funnel_chart(stages: list[FunnelStage]) -> str:
    """Horizontal funnel bars per stage, with the share of awareness and the drop-off after it."""
    width, row, left = 960, 62, 130
    top = max((stage.entered for stage in stages), default=0) or 1
    body: list[str] = []
    for index, stage in enumerate(stages):
        y = 10 + index * row
        bar = (width - left - 20) * stage.entered / top
        first = stages[0].entered or 1
        tip = (
            f"{stage.stage}: {stage.entered:,} customers"
            f" ({stage.entered / first:.1%} of {stages[0].stage})"
        )
        body.append(_text(left - 10, y + 22, stage.stage, text_anchor="end", class_="label"))
        body.append(
            _mark(
                "rect",
                tip,
                x=float(left),
                y=float(y),
                width=max(bar, 1.0),
                height=32.0,
                rx="4",
                fill=stage_colour(stage.stage),
            )
        )
        body.append(_text(left + 8, y + 21, number(stage.entered), class_="on-bar"))
        if stage.dropped_off is not None and stage.entered:
            share = stage.dropped_off / stage.entered
            body.append(
                _text(
                    left,
                    y + 50,
                    f"{stage.converted:,} came back ({1 - share:.0%}), "
                    f"{stage.dropped_off:,} still lapsed ({share:.0%})"
                    if stage.stage == LAPSED
                    else f"{stage.converted:,} moved on ({1 - share:.0%}), "
                    f"{stage.dropped_off:,} dropped off ({share:.0%})",
                    class_="note",
                )
            )
    return _svg(width, 10 + row * len(stages), body, "Journey funnel")


@dataclass(frozen=True)
class Flow:
    source: str
    target: str
    customers: int


def _node_totals(flows: list[Flow], order: tuple[str, ...]) -> dict[str, int]:
    incoming: dict[str, int] = {}
    outgoing: dict[str, int] = {}
    for flow in flows:
        incoming[flow.target] = incoming.get(flow.target, 0) + flow.customers
        outgoing[flow.source] = outgoing.get(flow.source, 0) + flow.customers
    return {
        node: max(incoming.get(node, 0), outgoing.get(node, 0))
        for node in order
        if node in incoming or node in outgoing
    }


def sankey_chart(flows: list[Flow]) -> str:
    """Stage-flow Sankey: one column per stage, bands as wide as the customers who moved."""
    width, height, node_width, top = 960, 340, 16, 28
    order = flow_order()
    unknown = {node for flow in flows for node in (flow.source, flow.target)} - set(order)
    if unknown:
        raise ValueError(f"stage flow has stages the rules do not define: {sorted(unknown)}")
    totals = _node_totals(flows, order)
    if not totals:
        return ""
    columns = [node for node in order if node in totals]
    scale = (height - top - 10) / max(totals.values())
    step = (width - node_width - 40) / max(len(columns) - 1, 1)
    x = {node: 20 + index * step for index, node in enumerate(columns)}
    y = {node: top + (height - top - 10 - totals[node] * scale) / 2 for node in columns}
    out_offset = dict.fromkeys(columns, 0.0)
    in_offset = dict.fromkeys(columns, 0.0)
    body: list[str] = []
    ordered = sorted(flows, key=lambda f: (order.index(f.source), order.index(f.target)))
    for flow in ordered:
        band = flow.customers * scale
        x0, x1 = x[flow.source] + node_width, x[flow.target]
        y0 = y[flow.source] + out_offset[flow.source] + band / 2
        y1 = y[flow.target] + in_offset[flow.target] + band / 2
        out_offset[flow.source] += band
        in_offset[flow.target] += band
        middle = (x0 + x1) / 2
        path = f"M{x0:.1f},{y0:.1f} C{middle:.1f},{y0:.1f} {middle:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
        body.append(
            _mark(
                "path",
                f"{flow.source} → {flow.target}: {flow.customers:,} customers",
                d=path,
                stroke=stage_colour(flow.target),
                stroke_width=f"{max(band, 1):.1f}",
                fill="none",
                class_="band",
            )
        )
    for node in columns:
        body.append(
            f'<rect x="{x[node]:.1f}" y="{y[node]:.1f}" width="{node_width}"'
            f' height="{max(totals[node] * scale, 1):.1f}" fill="{stage_colour(node)}"/>'
        )
        anchor = "start" if node == columns[0] else "end" if node == columns[-1] else "middle"
        label_x = x[node] + (0 if anchor == "start" else node_width if anchor == "end" else 8)
        body.append(
            _text(
                label_x, y[node] - 8, f"{node} {totals[node]:,}", text_anchor=anchor, class_="label"
            )
        )
    return _svg(width, height, body, "Stage flow")


def line_chart(title: str, points: list[tuple[str, float | None]], decimals: int = 0) -> str:
    """A small trend line over weeks, with the first and last week and the latest value."""
    width, height, left, bottom = 360, 160, 46, 26
    values = [value for _, value in points if value is not None]
    if not values:
        return ""
    high = max(values) or 1
    step = (width - left - 12) / max(len(points) - 1, 1)

    def position(index: int, value: float) -> tuple[float, float]:
        return left + index * step, 24 + (height - bottom - 24) * (1 - value / high)

    body = []
    body.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 12}"'
        f' y2="{height - bottom}" class="axis"/>'
    )
    body.append(_text(left - 6, 28, compact(high, decimals), text_anchor="end", class_="tick"))
    body.append(_text(left - 6, height - bottom, "0", text_anchor="end", class_="tick"))
    coordinates = [position(i, v) for i, (_, v) in enumerate(points) if v is not None]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py in coordinates)
    body.append(f'<polyline points="{line}" class="trend"/>')
    for index, (week, value) in enumerate(points):
        if value is not None:
            px, py = position(index, value)
            body.append(
                _mark(
                    "circle",
                    f"week of {week}: {number(value, decimals)}",
                    cx=px,
                    cy=py,
                    r="3",
                    class_="point",
                )
            )
    body.append(_text(left, height - 8, points[0][0], class_="tick"))
    body.append(_text(width - 12, height - 8, points[-1][0], text_anchor="end", class_="tick"))
    return _svg(width, height, body, title)


@dataclass(frozen=True)
class Lift:
    label: str
    lift: float | None
    low: float | None
    high: float | None
    detail: str


def lift_chart(lifts: list[Lift]) -> str:
    """Lift per campaign as a dot with its 95 % confidence interval, around a zero line."""
    width, row, left, right = 960, 34, 230, 30
    measured = [lift for lift in lifts if lift.lift is not None]
    if not measured:
        return ""
    bound = max(
        0.01,
        *(abs(v) for lift in measured for v in (lift.low, lift.high, lift.lift) if v is not None),
    )
    height = 40 + row * len(lifts)

    def x(value: float) -> float:
        return left + (width - left - right) * (value + bound) / (2 * bound)

    body = [
        f'<line x1="{x(0):.1f}" y1="10" x2="{x(0):.1f}" y2="{height - 24}" class="zero"/>',
        _text(x(-bound), height - 6, f"{-bound:+.1%}", class_="tick"),
        _text(x(0), height - 6, "0", text_anchor="middle", class_="tick"),
        _text(x(bound), height - 6, f"{bound:+.1%}", text_anchor="end", class_="tick"),
    ]
    for index, lift in enumerate(lifts):
        y = 24 + index * row
        body.append(_text(left - 12, y + 4, lift.label, text_anchor="end", class_="label"))
        if lift.lift is None:
            body.append(_text(x(0) + 8, y + 4, "no control group", class_="note"))
            continue
        low = lift.low if lift.low is not None else lift.lift
        high = lift.high if lift.high is not None else lift.lift
        colour = "#10b981" if low > 0 else "#ef4444" if high < 0 else "#64748b"
        body.append(
            f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}"'
            f' stroke="{colour}" class="interval"/>'
        )
        tip = (
            f"{lift.label}: lift {lift.lift:+.2%}, 95 % CI [{low:+.2%}, {high:+.2%}]; {lift.detail}"
        )
        body.append(_mark("circle", tip, cx=x(lift.lift), cy=float(y), r="6", fill=colour))
    return _svg(width, height, body, "Campaign lift")


@dataclass(frozen=True)
class JourneyScore:
    journey: str
    score: float
    underperforming: bool
    detail: str


def ranking_chart(scores: list[JourneyScore]) -> str:
    """Journeys as bars of their success score (0-100), lowest first; under-performers in red."""
    width, row, left, right = 960, 40, 190, 60
    if not scores:
        return ""
    height = 30 + row * len(scores)

    def x(value: float) -> float:
        return left + (width - left - right) * value / 100

    body = [
        f'<line x1="{x(score):.1f}" y1="4" x2="{x(score):.1f}" y2="{height - 22}" class="axis"/>'
        for score in (0, 50, 100)
    ]
    body += [
        _text(x(score), height - 6, str(score), text_anchor="middle", class_="tick")
        for score in (0, 50, 100)
    ]
    for index, score in enumerate(scores):
        y = 8 + index * row
        colour = "#ef4444" if score.underperforming else "#10b981"
        body.append(_text(left - 12, y + 18, score.journey, text_anchor="end", class_="label"))
        body.append(
            _mark(
                "rect",
                f"{score.journey}: score {score.score:.1f}; {score.detail}",
                x=float(left),
                y=float(y),
                width=max(x(score.score) - left, 1.0),
                height=26.0,
                rx="4",
                fill=colour,
            )
        )
        body.append(_text(x(score.score) + 6, y + 18, f"{score.score:.1f}", class_="label"))
    return _svg(width, height, body, "Journey success ranking")
