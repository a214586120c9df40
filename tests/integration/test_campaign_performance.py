"""Closing the loop: decisions, sends and orders of a known effect give the right lift (dbt)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from journeyflow import loading
from journeyflow.dbt_runner import run_dbt
from journeyflow.sources import load_sources
from tests.integration.activation_world import AS_OF, campaign, config, person

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REPORT_MODELS = [
    "stg_sendgrid__events",
    "stg_activation__campaigns",
    "stg_activation__campaign_decisions",
    "stg_activation__campaign_sends",
    "rpt_campaign_performance",
]
TREATMENT_RATE, CONTROL_RATE = 0.30, 0.20  # the known effect: +10 points


def _convert(world, profile_ids: list[str], share: float) -> int:
    """Give the first `share` of the profiles a completed order 2 days after the decision."""
    converting = profile_ids[: round(len(profile_ids) * share)]
    for pid in converting:
        world.add_touchpoint(pid, "order_completed", AS_OF + timedelta(days=2), 100)
    return len(converting)


def test_lift_is_computed_correctly_on_a_dataset_with_a_known_effect(activation_world):
    world = activation_world
    with world.conn.transaction():
        loading.ensure_raw_schema(
            world.conn, load_sources(ROOT / "dags/config/sources.yml")["email_events"]
        )
    world.add_people(*(person(f"p_{i:05d}") for i in range(4000)))
    offer = campaign("offer", trigger={"sql": "true"}, holdout_percent=50, goal={"within_days": 7})
    world.run(config(offer))

    arms = world.rows(
        "select profile_id, arm, send_id from activation.campaign_decisions order by profile_id"
    )
    treated = [row["profile_id"] for row in arms if row["arm"] == "treatment"]
    control = [row["profile_id"] for row in arms if row["arm"] == "holdout"]
    assert len(treated) + len(control) == 4000
    converted_t = _convert(world, treated, TREATMENT_RATE)
    converted_c = _convert(world, control, CONTROL_RATE)
    # orders outside the attribution window do not count
    world.add_touchpoint(control[-1], "order_completed", AS_OF - timedelta(hours=1), 999)
    world.add_touchpoint(control[-2], "order_completed", AS_OF + timedelta(days=8), 999)
    # engagement joined back to the send through the send_id custom arg
    opened = [row for row in arms if row["arm"] == "treatment"][:10]
    world.conn.execute(
        "insert into raw.email_events (_batch_id, _source_file, _line_number, _loaded_at,"
        " _record, sg_event_id, email, event, timestamp, campaign_id, send_id)"
        " select 'b1', 'f', n, now(), '{}', 'e' || n, 'x@example.com', 'open', %s, 'offer', s"
        " from unnest(%s::text[]) with ordinality as t(s, n)",
        (AS_OF + timedelta(hours=3), [row["send_id"] for row in opened]),
    )

    run_dbt(["build", "--select", *REPORT_MODELS], ROOT / "dbt_project", world.url)

    report = {
        row["variant"]: row
        for row in world.rows("select * from reporting.rpt_campaign_performance")
    }
    assert set(report) == {"all", "default"}
    row = report["all"]
    n_t, n_c = len(treated), len(control)
    p_t, p_c = converted_t / n_t, converted_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    assert (row["entries"], row["control_entries"]) == (n_t, n_c)
    assert (row["converted"], row["control_converted"]) == (converted_t, converted_c)
    assert (row["sent"], row["opened"]) == (n_t, 10)
    assert row["revenue"] == 100 * converted_t and row["control_revenue"] == 100 * converted_c
    assert float(row["lift"]) == pytest.approx(p_t - p_c, abs=1e-6)
    assert float(row["lift_standard_error"]) == pytest.approx(se, abs=1e-6)
    assert float(row["lift_ci_low"]) == pytest.approx(p_t - p_c - 1.959964 * se, abs=1e-6)
    assert float(row["lift_ci_high"]) == pytest.approx(p_t - p_c + 1.959964 * se, abs=1e-6)
    assert float(row["lift_ci_low"]) < 0.10 < float(row["lift_ci_high"])  # covers the true lift
    assert float(row["lift_ci_low"]) > 0  # and detects it at this size
