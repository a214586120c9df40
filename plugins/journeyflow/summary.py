"""The run summary printed after a pipeline run, read from the warehouse itself."""

from __future__ import annotations

import psycopg

from journeyflow import ops
from journeyflow.stages import journey_stages

DAG_ID = "journey_pipeline"


def _rows(conn: psycopg.Connection, query: str, params: tuple = ()) -> list[tuple]:
    return conn.execute(query, params).fetchall()


def _relation_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def latest_run_id(conn: psycopg.Connection) -> str | None:
    if not _relation_exists(conn, "dq.validation_results"):
        return None
    row = conn.execute(
        "select run_id from dq.validation_results order by validated_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def loaded_this_run(run: dict | None) -> dict[str, int]:
    """Rows each source loaded in the recorded run, from its ops.pipeline_runs task figures."""
    tasks = (run or {}).get("tasks") or {}
    return {
        task["source"]: task.get("rows_loaded", 0)
        for key, task in tasks.items()
        if key.startswith("extract_source") and "source" in task
    }


def collect_summary(conn: psycopg.Connection) -> dict:
    """Figures of the latest run (its ops.pipeline_runs row) and of the warehouse it left."""
    run = ops.latest_run(conn, DAG_ID)
    run_id = run["run_id"] if run else latest_run_id(conn)
    summary: dict = {"run_id": run_id, "run": run}
    this_run = loaded_this_run(run)
    summary["sources"] = [
        (source, loaded, rejected, this_run.get(source, 0))
        for source, loaded, rejected in _rows(
            conn,
            "select source, sum(rows_loaded), sum(rows_rejected)"
            " from raw._load_batches group by source order by source",
        )
    ]
    summary["profiles"] = conn.execute("select count(*) from marts.dim_customers").fetchone()[0]
    summary["identifiers"] = conn.execute(
        "select count(*) from intermediate.int_identifiers_resolved"
    ).fetchone()[0]
    summary["stages"] = dict(
        _rows(conn, "select current_stage, count(*) from marts.dim_customers group by 1")
    )
    summary["kpis"] = conn.execute(
        "select sum(order_count), sum(revenue), sum(revenue) / nullif(sum(order_count), 0),"
        " avg((order_count >= 2)::int) filter (where order_count >= 1)"
        " from marts.dim_customers"
    ).fetchone()
    summary["decisions"] = _rows(
        conn,
        "select campaign_id, decision, reason, count(*) from activation.campaign_decisions"
        " group by 1, 2, 3 order by 1, 2, 3",
    )
    summary["sends"] = _rows(
        conn,
        "select status, count(*), count(*) filter (where run_id = %s)"
        " from activation.campaign_sends group by 1 order by 1",
        (run_id,),
    )
    summary["quality"] = _rows(
        conn,
        "select gate, count(*), count(*) filter (where not success and severity = 'error'),"
        " count(*) filter (where not success and severity = 'warn')"
        " from dq.validation_results where run_id = %s group by gate order by min(validated_at)",
        (run_id,),
    )
    summary["reporting"] = _rows(
        conn,
        "select table_name from information_schema.tables where table_schema = 'reporting'"
        " order by 1",
    )
    summary["reporting"] = [
        (name, conn.execute(f'select count(*) from reporting."{name}"').fetchone()[0])
        for (name,) in summary["reporting"]
    ]
    return summary


def _task_figures(task: dict) -> str:
    """The figures worth a glance for one task of the run record."""
    names = {
        "rows_loaded": "rows loaded",
        "rows_rejected": "rejected",
        "checks": "checks",
        "failed": "warnings",
        "dbt_pass": "dbt passed",
        "dbt_error": "dbt errors",
        "messages_sent": "sent",
        "messages_suppressed": "suppressed",
        "tables_published": "tables",
    }
    return ", ".join(f"{task[key]:,} {label}" for key, label in names.items() if key in task)


def format_run(run: dict) -> list[str]:
    """The run's ops.pipeline_runs row: state, headline figures and one line per task."""
    duration = run["duration_seconds"] or 0
    lines = [
        f"Recorded in ops.pipeline_runs: {run['state']} in {duration:.0f} s;"
        f" {run['rows_loaded']:,} rows loaded, {run['rows_rejected']:,} rejected,"
        f" {run['gates_passed']} gate(s) passed, {run['messages_sent']:,} message(s) sent,"
        f" {run['messages_suppressed']:,} suppressed",
        "Tasks",
    ]
    for key, task in sorted(run["tasks"].items()):
        seconds = task.get("duration_seconds") or 0
        name = f"extract {task['source']}" if "source" in task else key
        lines.append(f"  {name:<24} {task['state']:<16} {seconds:>6.1f} s  {_task_figures(task)}")
    return lines


def format_summary(summary: dict, wall_seconds: float) -> str:
    """Human-readable run summary."""
    lines = [f"Run {summary['run_id']}  ({wall_seconds:.0f} s wall time)"]
    if summary.get("run"):
        lines += format_run(summary["run"])
    lines += ["", "Rows per source"]
    for source, loaded, rejected, this_run in summary["sources"]:
        lines.append(
            f"  {source:<18} {loaded:>9,} loaded ({this_run:,} this run), {rejected:,} quarantined"
        )
    lines.append("")
    lines.append(
        f"Resolved profiles: {summary['profiles']:,} from {summary['identifiers']:,} identifiers"
    )
    lines.append("Customers per current journey stage")
    for stage in journey_stages():
        lines.append(f"  {stage:<14} {summary['stages'].get(stage, 0):>7,}")
    orders, revenue, aov, repeat_rate = summary["kpis"]
    lines.append("")
    lines.append(
        f"Headline KPIs: {orders or 0:,} orders, revenue {revenue or 0:,.2f}, "
        f"average order {aov or 0:,.2f}, repeat-purchase rate {(repeat_rate or 0):.1%}"
    )
    lines.append("")
    lines.append("Campaign decisions")
    for campaign, decision, reason, count in summary["decisions"]:
        lines.append(f"  {campaign:<22} {decision:<11} {reason:<24} {count:>6,}")
    lines.append("Outbox")
    for status, total, this_run in summary["sends"]:
        lines.append(f"  {status:<10} {total:>6,} ({this_run:,} this run)")
    lines.append("")
    lines.append("Quality gates")
    for gate, checks, errors, warnings in summary["quality"]:
        verdict = "passed" if not errors else f"FAILED ({errors} error(s))"
        lines.append(f"  {gate:<16} {checks:>4} checks {verdict}, {warnings} warning(s)")
    lines.append("")
    lines.append("Reporting tables published")
    for name, count in summary["reporting"]:
        lines.append(f"  reporting.{name:<28} {count:>7,} rows")
    return "\n".join(lines)
