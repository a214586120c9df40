"""Incremental runs over N deliveries (late and re-delivered rows included) == one full rebuild."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.conftest import PIPELINE_TASKS, fresh_database
from tests.integration.conftest import ROOT, load_dag, point_pipeline_at
from tests.integration.warehouse_fingerprint import fingerprint

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 1, tzinfo=UTC)
# Each delivery holds the records before its cut-off (the last one all the rest); its run's
# logical date is the cut-off.
CUTOFFS = [END - timedelta(days=30), END - timedelta(days=2), END]
# The project's default var('restatement_lookback_days'): the third run restates from here.
WINDOW_START = END - timedelta(
    days=yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"][
        "restatement_lookback_days"
    ]
)
# Every 10th web event of these days is held back from the second delivery to the third:
# most of them occurred before the third run's lookback window.
LATE_FROM, LATE_UNTIL = END - timedelta(days=9), CUTOFFS[1]
TIME_FIELDS = {
    "web_events": "ts",
    "orders": "ts",
    "support_tickets": "opened_at",
    "crm_contacts": "updated_at",
    "email_events": "timestamp",
}
FORMATS = {
    "web_events": "jsonl",
    "orders": "csv",
    "support_tickets": "json",
    "crm_contacts": "csv",
    "email_events": "json",
}
COMPARED = ["intermediate", "marts"]
# How identities changed across runs (history), which one full build cannot have.
HISTORY_COLUMNS = {"previous_profile_id", "change_rule", "linking_edge_id", "linking_record_id"}
HISTORY_TABLES = {"marts.identity_merge_log"}
# Edges no record carries any more stay as tombstones in incremental runs.
ROW_FILTERS = {"intermediate.int_identity_edges": "is_active"}
# The staging model of each source, by the name the incremental models' state uses.
STAGED = {
    "web": "stg_web__events",
    "crm": "stg_crm__contacts",
    "shop": "stg_shop__orders",
    "support": "stg_support__tickets",
    "sendgrid": "stg_sendgrid__events",
}
# Only delivery and steps after the marts gate are skipped: this test is about the warehouse.
SKIPPED = "|".join(PIPELINE_TASKS[PIPELINE_TASKS.index("send_campaigns") :])


def _moment(value) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _read(path: Path, kind: str) -> tuple[list[dict], list[str] | None]:
    text = path.read_text(encoding="utf-8")
    if kind == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()], None
    if kind == "json":
        return json.loads(text), None
    reader = csv.DictReader(text.splitlines())
    return list(reader), list(reader.fieldnames)


def _write(path: Path, kind: str, records: list[dict], columns: list[str] | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        if kind == "jsonl":
            handle.writelines(json.dumps(record) + "\n" for record in records)
        elif kind == "json":
            json.dump(records, handle)
        else:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)


def _is_late(source: str, record: dict, position: int) -> bool:
    moment = _moment(record[TIME_FIELDS[source]])
    return source == "web_events" and LATE_FROM <= moment < LATE_UNTIL and position % 10 == 0


def _delivery(source: str, records: list[dict], number: int) -> list[dict]:
    """Records of one delivery: its interval's, minus late ones, plus those held back before."""
    low = CUTOFFS[number - 2] if number > 1 else datetime.min.replace(tzinfo=UTC)
    high = CUTOFFS[number - 1] if number < len(CUTOFFS) else datetime.max.replace(tzinfo=UTC)
    chosen = []
    for position, record in enumerate(records):
        moment = _moment(record[TIME_FIELDS[source]])
        late = _is_late(source, record, position)
        in_interval = low <= moment < high
        if (in_interval and not late) or (late and number == 3):
            chosen.append(record)
    return chosen


def _redeliver(data_dir: Path, demo: dict[str, tuple[list[dict], list[str] | None]]) -> dict:
    """Deliver the second web and ticket files again, corrected: one web event inside the
    lookback window is gone, one solved ticket is open again. Returns what changed."""
    web = _delivery("web_events", demo["web_events"][0], 2)
    anonymous_counts: dict[str, int] = {}
    for record in web:
        anonymous_counts[record["anonymous_id"]] = (
            anonymous_counts.get(record["anonymous_id"], 0) + 1
        )
    removed = next(
        record
        for record in reversed(web)
        if _moment(record["ts"]) >= WINDOW_START and anonymous_counts[record["anonymous_id"]] > 1
    )
    _write(
        data_dir / "web_events" / "delivery_2.jsonl",
        "jsonl",
        [record for record in web if record is not removed],
        None,
    )
    tickets = _delivery("support_tickets", demo["support_tickets"][0], 2)
    reopened = next(ticket for ticket in reversed(tickets) if ticket.get("solved_at"))
    reopened.update(status="open", solved_at=None)
    _write(data_dir / "support_tickets" / "delivery_2.json", "json", tickets, None)
    return {"removed_event": removed["event_id"], "reopened_ticket": reopened["ticket_id"]}


def _deliver(data_dir: Path, demo: dict, number: int) -> None:
    """Write each source's file of one delivery (none when it has no records: an empty batch
    fails gate_raw)."""
    for source, (records, columns) in demo.items():
        delivered = _delivery(source, records, number)
        if delivered:
            path = data_dir / source / f"delivery_{number}.{FORMATS[source]}"
            _write(path, FORMATS[source], delivered, columns)


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory) -> dict[str, tuple[list[dict], list[str] | None]]:
    from journeyflow.demo_data import SOURCE_FILES, generate_demo_data

    generated = tmp_path_factory.mktemp("generated")
    generate_demo_data(generated, customers=300, seed=11, end_date=END.date(), malformed_rate=0)
    return {source: _read(generated / SOURCE_FILES[source], FORMATS[source]) for source in FORMATS}


def _run(dag, logical_date: datetime) -> None:
    dag_run = dag.test(logical_date=logical_date, mark_success_pattern=SKIPPED)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "success", states


def _record_counts(url: str) -> dict[str, dict[str, tuple]]:
    """Per source (records, latest load time): as kept by each model that merges new
    records, and as the staging models hold them ("held")."""
    with psycopg.connect(url) as conn:
        counts = {
            state: {
                source: (records, loaded_through)
                for source, records, loaded_through in conn.execute(
                    f"select source, records, loaded_through from intermediate.{state}"
                )
            }
            for state in [
                "int_identity_edges_state",
                "int_email_spellings_state",
                "int_touchpoints_unioned_state",
            ]
        }
        counts["held"] = {
            source: conn.execute(
                f"select count(*), max(loaded_at) from staging.{relation}"
            ).fetchone()
            for source, relation in STAGED.items()
        }
    return counts


def _warehouse_state(url: str) -> dict[str, str]:
    return fingerprint(
        url,
        schemas=COMPARED,
        ignore_columns=HISTORY_COLUMNS,
        row_filters=ROW_FILTERS,
        include_views=True,
        skip_tables=HISTORY_TABLES,
    )


@pytest.fixture(scope="module")
def warehouses(server_url, airflow_db, sendgrid_sink, bi_role, demo_records, tmp_path_factory):
    """The warehouse after three incremental runs and after one full build of the same files."""
    dag = load_dag("journey_pipeline")
    incremental_dir = tmp_path_factory.mktemp("deliveries")
    full_dir = tmp_path_factory.mktemp("everything")
    with (
        fresh_database(server_url, "incremental") as incremental_url,
        fresh_database(server_url, "full") as full_url,
        pytest.MonkeyPatch.context() as patch,
    ):
        point_pipeline_at(patch, incremental_url, incremental_dir, sendgrid_sink.url)
        changes, record_counts = {}, {}
        for number, cutoff in enumerate(CUTOFFS, start=1):
            _deliver(incremental_dir, demo_records, number)
            if number == 3:
                changes = _redeliver(incremental_dir, demo_records)
            _run(dag, cutoff)
            record_counts[number] = _record_counts(incremental_url)
        shutil.copytree(incremental_dir, full_dir, dirs_exist_ok=True)
        point_pipeline_at(patch, full_url, full_dir, sendgrid_sink.url)
        _run(dag, CUTOFFS[-1])
        yield {
            "incremental": incremental_url,
            "full": full_url,
            "changes": changes,
            "record_counts": record_counts,
            "states": {"incremental": _warehouse_state(incremental_url),
                       "full": _warehouse_state(full_url)},
        }  # fmt: skip


def test_the_deliveries_hold_late_and_corrected_rows(warehouses):
    with psycopg.connect(warehouses["incremental"]) as conn:
        late = conn.execute(
            "select count(*), count(distinct _batch_id) from raw.web_events"
            " where _source_file = 'web_events/delivery_3.jsonl' and ts < %s",
            (CUTOFFS[1],),
        ).fetchone()
        removed = conn.execute(
            "select count(*) from marts.fct_touchpoints where source_record_id = %s",
            (warehouses["changes"]["removed_event"],),
        ).fetchone()[0]
        reopened = conn.execute(
            "select count(*) from marts.fct_touchpoints where touchpoint_id = %s",
            ("ticket_solved:" + warehouses["changes"]["reopened_ticket"],),
        ).fetchone()[0]
    assert late[0] > 0  # rows of earlier days arrived with the third delivery
    assert (removed, reopened) == (0, 0)


def test_incremental_runs_build_the_same_warehouse_as_a_full_rebuild(warehouses):
    incremental, full = warehouses["states"]["incremental"], warehouses["states"]["full"]
    assert {"intermediate.int_touchpoints_unioned", "marts.fct_touchpoints"} <= set(full)
    assert sorted(incremental) == sorted(full)
    differing = sorted(table for table in full if incremental[table] != full[table])
    assert differing == [], {table: (incremental[table], full[table]) for table in differing}


@pytest.mark.parametrize("run", [2, 3])
def test_the_record_counts_kept_for_the_next_run_match_the_sources(warehouses, run):
    """What a run keeps for the next one's check for records that went away equals what the
    sources hold: after the second run, which merged and counted only the records loaded
    since, and after the third, which recomputed (a re-delivered file) and counted all."""
    counts = warehouses["record_counts"][run]
    assert set(counts["int_identity_edges_state"]) == set(STAGED)
    assert set(counts["int_email_spellings_state"]) == set(STAGED) - {"sendgrid"}
    assert set(counts["int_touchpoints_unioned_state"]) == set(STAGED) - {"crm"}
    for state, kept in counts.items():
        assert kept == {source: counts["held"][source] for source in kept}, state
