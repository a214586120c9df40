"""Benchmark: what the quality gates cost in a demo-size run (share of the DAG's task time)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.dag_runs import prepare_environment, task_durations  # noqa: E402

GATES = ("gate_raw", "gate_marts", "gate_reporting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-gates-"))
    prepare_environment(workdir)
    import psycopg

    from journeyflow import warehouse
    from journeyflow.demo_data import generate_demo_data

    server = os.environ.get("JOURNEY_TEST_SERVER_URL") or warehouse.local_server_url("postgres")
    if not server:
        server = warehouse.embedded_server_url(workdir / "pgdata", "postgres")
    name = f"journey_bench_{uuid.uuid4().hex[:8]}"
    url = warehouse.with_database(server, name)
    warehouse.ensure_database(url)
    os.environ["JOURNEY_WAREHOUSE_URL"] = url
    generate_demo_data(workdir / "data", customers=arguments.customers, end_date=date(2026, 11, 1))
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["journey_pipeline"]
    try:
        dag_run = dag.test(logical_date=datetime(2026, 11, 1, tzinfo=UTC))
        durations = task_durations(dag_run)
    finally:
        with psycopg.connect(warehouse.with_database(server, "postgres"), autocommit=True) as c:
            c.execute(f'drop database if exists "{name}" with (force)')
    total = sum(durations.values())
    gates = sum(durations.get(gate, 0.0) for gate in GATES)
    rest = total - gates
    print(f"run state: {dag_run.state}; {arguments.customers:,} customers")
    for task, seconds in sorted(durations.items(), key=lambda item: -item[1]):
        print(f"  {task:<20} {seconds:7.2f} s")
    print(f"task time total     {total:7.2f} s")
    print(f"quality gates       {gates:7.2f} s  = {gates / rest:.1%} added to the other tasks")
    marts = durations.get("gate_marts", 0.0)
    print(f"gate_marts alone    {marts:7.2f} s  = {marts / rest:.1%} added to the other tasks")


if __name__ == "__main__":
    main()
