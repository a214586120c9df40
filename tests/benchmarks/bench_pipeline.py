"""Benchmark: the whole journey_pipeline DAG on N generated touchpoints, then on 1 % more."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.dag_runs import prepare_environment, task_durations  # noqa: E402
from tests.benchmarks.touchpoint_files import (  # noqa: E402
    Population,
    default_intervals,
    write_interval,
)

END = datetime(2026, 11, 1, tzinfo=UTC)
MODEL_LINE = re.compile(r"OK created .*? model (\S+) .*? in ([\d.]+)s\]")
TEST_LINE = re.compile(r" (?:PASS|WARN) (\S+) .*? in ([\d.]+)s\]")


def _dbt_timings(log_file: Path, offset: int) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per model and per data test, from dbt's log lines written after offset."""
    if not log_file.exists():
        return {}, {}
    with log_file.open(encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        text = handle.read()
    models = {name: float(seconds) for name, seconds in MODEL_LINE.findall(text)}
    tests: dict[str, float] = {}
    for name, seconds in TEST_LINE.findall(text):
        tests[name] = tests.get(name, 0.0) + float(seconds)
    return models, tests


def _run(dag, logical_date: datetime, log_file: Path) -> dict:
    offset = log_file.stat().st_size if log_file.exists() else 0
    started = time.monotonic()
    dag_run = dag.test(logical_date=logical_date)
    wall = time.monotonic() - started
    models, tests = _dbt_timings(log_file, offset)
    return {
        "state": str(dag_run.state),
        "wall": wall,
        "tasks": task_durations(dag_run),
        "models": models,
        "tests": tests,
    }


def _print_run(title: str, run: dict, top: int) -> None:
    print(f"\n{title}: state {run['state']}, wall time {run['wall']:.1f} s")
    for task, seconds in sorted(run["tasks"].items(), key=lambda item: -item[1]):
        print(f"  {task:<24} {seconds:8.1f} s")
    print(f"  dbt models (slowest {top}):")
    _print_slowest(run["models"], top)
    print(f"  data tests {sum(run['tests'].values()):.1f} s in all (slowest {top}):")
    _print_slowest(run["tests"], top)


def _print_slowest(seconds_by_name: dict[str, float], top: int) -> None:
    for name, seconds in sorted(seconds_by_name.items(), key=lambda item: -item[1])[:top]:
        print(f"    {name:<50} {seconds:8.1f} s")


def _print_comparison(full: dict, incremental: dict) -> None:
    print("\nincremental / full per task:")
    for task, seconds in sorted(full["tasks"].items(), key=lambda item: -item[1]):
        again = incremental["tasks"].get(task, 0.0)
        ratio = again / seconds if seconds else 0.0
        print(f"  {task:<24} {seconds:8.1f} s -> {again:8.1f} s  ({ratio:6.1%})")
    ratio = incremental["wall"] / full["wall"]
    print(
        f"\nfull run {full['wall']:.1f} s, incremental run {incremental['wall']:.1f} s:"
        f" incremental = {ratio:.1%} of full (goal: full < 900 s, incremental <= 10 %)"
    )


def _recomputed_share(url: str) -> dict[str, int] | None:
    """How much of the warehouse the last build's profile marts recomputed: the listed profiles
    and the touchpoints they hold (each profile mart re-reads those); None when every profile
    was recomputed."""
    import psycopg

    from journeyflow.warehouse import analytic_session_options

    with psycopg.connect(url, options=analytic_session_options()) as conn:
        rebuild_all = conn.execute(
            "select rebuild_all from intermediate.int_profiles_to_rebuild where profile_id is null"
        ).fetchone()[0]
        if rebuild_all:
            return None
        row = conn.execute(
            """select
                (select count(profile_id) from intermediate.int_profiles_to_rebuild),
                (select count(*) from intermediate.int_customer_profiles),
                (select count(*) from marts.fct_touchpoints
                 inner join intermediate.int_profiles_to_rebuild using (profile_id)),
                (select count(*) from marts.fct_touchpoints)"""
        ).fetchone()
    return dict(zip(("listed", "profiles", "listed_touchpoints", "touchpoints"), row, strict=True))


def _print_recomputed_share(share: dict[str, int] | None) -> None:
    if share is None:
        print("\nthe incremental run recomputed every profile")
        return
    print(
        f"\nprofiles the incremental run recomputed: {share['listed']:,} of {share['profiles']:,}"
        f" ({share['listed'] / max(share['profiles'], 1):.1%}), holding"
        f" {share['listed_touchpoints']:,} of {share['touchpoints']:,} touchpoints"
        f" ({share['listed_touchpoints'] / max(share['touchpoints'], 1):.1%}):"
        " the profile marts read those again"
    )


def _server_url(workdir: Path) -> str:
    from journeyflow import warehouse

    server = os.environ.get("JOURNEY_TEST_SERVER_URL") or warehouse.local_server_url("postgres")
    return server or warehouse.embedded_server_url(workdir / "pgdata", "postgres")


def _drop_database(server: str, name: str) -> None:
    import psycopg

    from journeyflow import warehouse

    with psycopg.connect(warehouse.with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _generate(data_dir: Path, interval, people: Population, seed: int) -> None:
    started = time.monotonic()
    counts = write_interval(data_dir, interval, people, seed)
    print(
        f"generated {interval.name}: {interval.touchpoints:,} touchpoints"
        f" ({', '.join(f'{source} {count:,}' for source, count in counts.items())})"
        f" in {time.monotonic() - started:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--touchpoints", type=int, default=10_000_000)
    parser.add_argument("--people", type=int, help="default: touchpoints / 40")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="slowest dbt models to print")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse database")
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    prepare_environment(workdir)
    os.environ["JOURNEY_REPORT_DIR"] = str(workdir / "report")
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # figures, not task logs
    os.environ["DBT_LOG_PATH"] = str(workdir / "dbt-logs")
    log_file = workdir / "dbt-logs" / "dbt.log"
    people = Population.of(arguments.people or max(1000, arguments.touchpoints // 40))
    history, increment = default_intervals(arguments.touchpoints, END)
    _generate(workdir / "data", history, people, arguments.seed)

    server = _server_url(workdir)
    name = f"journey_bench_{uuid.uuid4().hex[:8]}"
    from journeyflow import warehouse

    os.environ["JOURNEY_WAREHOUSE_URL"] = warehouse.with_database(server, name)
    warehouse.ensure_database(os.environ["JOURNEY_WAREHOUSE_URL"])
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["journey_pipeline"]
    try:
        full = _run(dag, END, log_file)
        _print_run(f"full run ({arguments.touchpoints:,} touchpoints)", full, arguments.top)
        _generate(workdir / "data", increment, people, arguments.seed)
        incremental = _run(dag, END + timedelta(days=1), log_file)
        _print_run(f"incremental run (+{increment.touchpoints:,})", incremental, arguments.top)
        _print_comparison(full, incremental)
        _print_recomputed_share(_recomputed_share(os.environ["JOURNEY_WAREHOUSE_URL"]))
    finally:
        if arguments.keep:
            print(f"warehouse kept: {name}")
        else:
            _drop_database(server, name)
    print(f"{people.size:,} people; the machine may be shared: compare ratios from one run")


if __name__ == "__main__":
    main()
