"""Command line for people: `python -m journeyflow.cli demo` runs the whole loop on demo data."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from journeyflow import warehouse
from journeyflow.progress import ProgressPrinter
from journeyflow.settings import PROJECT_ROOT

DAG_ID = "journey_pipeline"
DEMO_END_DATE = date(2026, 11, 1)
DEMO_API_KEY = "SG.demo-key-not-a-secret"
WAREHOUSE_CHOICES = ("auto", "local", "embedded")


def demo_sendgrid_connection() -> str:
    """The Airflow connection (JSON form) holding the demo's SendGrid API key."""
    return json.dumps({"conn_type": "generic", "password": DEMO_API_KEY})


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def airflow_environment(workdir: Path) -> dict[str, str]:
    """Airflow settings for a local, self-contained run (metadata in a git-ignored folder)."""
    home = workdir / ".airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }


def resolve_warehouse(workdir: Path, choice: str) -> str:
    """JOURNEY_WAREHOUSE_URL, else the local server on 5432, else an embedded PostgreSQL."""
    url = os.environ.get("JOURNEY_WAREHOUSE_URL") if choice == "auto" else None
    origin = "JOURNEY_WAREHOUSE_URL"
    if not url and choice in ("auto", "local"):
        url = warehouse.local_server_url()
        origin = "local PostgreSQL on 127.0.0.1:5432"
        if not url and choice == "local":
            raise SystemExit("no PostgreSQL answers on 127.0.0.1:5432")
    if not url:
        step("starting an embedded PostgreSQL (pgserver package) in .warehouse/")
        url = warehouse.embedded_server_url(workdir / ".warehouse" / "pgdata")
        origin = "embedded PostgreSQL in .warehouse/"
    warehouse.ensure_database(url)
    step(f"warehouse: {origin}, database {warehouse.database_name(url)}")
    return url


def prepare_demo_data(data_dir: Path, customers: int, seed: int) -> None:
    from journeyflow.demo_data import generate_demo_data

    step(f"generating demo data: {customers:,} customers, seed {seed} -> {data_dir}")
    counts = generate_demo_data(data_dir, customers=customers, seed=seed, end_date=DEMO_END_DATE)
    for source, count in sorted(counts.items()):
        print(f"    {source:<18} {count:>9,} records", flush=True)


def run_airflow(args: list[str], env: dict[str, str], log_path: Path) -> None:
    """Run an `airflow` command, full log to a file, condensed progress to the terminal."""
    executable = Path(sys.executable).with_name("airflow")
    printer = ProgressPrinter(lambda text: print(text, flush=True))
    with (
        open(log_path, "w") as log_file,
        subprocess.Popen(
            [str(executable), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        for line in process.stdout:
            log_file.write(line)
            printer.feed(line)
    if process.returncode != 0 or printer.state not in (None, "success"):
        raise SystemExit(f"airflow {' '.join(args)} failed; full log in {log_path}")


def run_dag(env: dict[str, str], logical_date: date, log_dir: Path) -> None:
    step("initialising Airflow metadata (.airflow/)")
    run_airflow(["db", "migrate"], env, log_dir / "airflow-db-migrate.log")
    log_path = log_dir / "airflow-dags-test.log"
    step(f"running DAG {DAG_ID} for {logical_date} (airflow dags test; full log in {log_path})")
    run_airflow(["dags", "test", DAG_ID, logical_date.isoformat()], env, log_path)


def print_summary(url: str, started: float) -> None:
    from journeyflow.summary import collect_summary, format_summary

    with warehouse.connect(url) as conn:
        text = format_summary(collect_summary(conn), time.monotonic() - started)
    print("\n" + text, flush=True)


def demo(arguments: argparse.Namespace) -> None:
    """Generate demo data and run the whole pipeline once against a local SendGrid sink."""
    from journeyflow.sendgrid_sink import SendGridSink

    started = time.monotonic()
    workdir = arguments.workdir.resolve()
    demo_dir = workdir / ".demo"
    data_dir = demo_dir / "data"
    url = resolve_warehouse(workdir, arguments.warehouse)
    prepare_demo_data(data_dir, arguments.customers, arguments.seed)
    env = {
        **os.environ,
        **airflow_environment(workdir),
        "JOURNEY_WAREHOUSE_URL": url,
        "JOURNEY_DATA_DIR": str(data_dir),
        "JOURNEY_REPORT_DIR": os.environ.get("JOURNEY_REPORT_DIR", str(demo_dir / "report")),
    }
    with ExitStack() as stack:
        if "JOURNEY_SENDGRID_HOST" not in os.environ:
            sink = stack.enter_context(SendGridSink(record_path=demo_dir / "sendgrid.jsonl"))
            env["JOURNEY_SENDGRID_HOST"] = sink.url
            env.setdefault("AIRFLOW_CONN_SENDGRID_DEFAULT", demo_sendgrid_connection())
            step(f"local SendGrid sink on {sink.url} (requests recorded in {sink.record_path})")
        run_dag(env, DEMO_END_DATE, demo_dir)
    print_summary(url, started)
    report_path = Path(env["JOURNEY_REPORT_DIR"]).resolve() / "journey_report.html"
    print(f"journey report: {report_path.as_uri()}", flush=True)


def docs(arguments: argparse.Namespace) -> None:
    """Build dbt docs and Great Expectations Data Docs as static sites under site/."""
    from journeyflow.dbt_runner import run_dbt
    from journeyflow.quality import build_data_docs

    url = resolve_warehouse(arguments.workdir.resolve(), arguments.warehouse)
    site = PROJECT_ROOT / "site"
    step("dbt docs generate -> site/dbt/")
    run_dbt(
        ["docs", "generate", "--target-path", str(site / "dbt")],
        PROJECT_ROOT / "dbt_project",
        url,
    )
    step("Great Expectations Data Docs -> site/data-quality/")
    for location in build_data_docs(PROJECT_ROOT / "expectations", url):
        print(f"    {location}")
    print(f"    {(site / 'dbt' / 'index.html').as_uri()}  (serve with: dbt docs serve)")


def report(arguments: argparse.Namespace) -> None:
    """Write the HTML journey report from the published reporting schema."""
    from journeyflow.report import REPORT_FILE, write_report
    from journeyflow.settings import load_settings

    url = resolve_warehouse(arguments.workdir.resolve(), arguments.warehouse)
    path = arguments.out or load_settings().report_dir / REPORT_FILE
    with warehouse.connect(url) as conn:
        write_report(conn, path.resolve())
    step(f"journey report -> {path.resolve().as_uri()}")


def _add_warehouse_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse",
        choices=WAREHOUSE_CHOICES,
        default="auto",
        help="auto: JOURNEY_WAREHOUSE_URL, else 127.0.0.1:5432, else embedded",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=PROJECT_ROOT,
        help="where .demo/, .airflow/ and .warehouse/ live (default: the project folder)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="journeyflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run the whole pipeline on demo data")
    demo_parser.add_argument("--customers", type=int, default=5000)
    demo_parser.add_argument("--seed", type=int, default=42)
    _add_warehouse_options(demo_parser)
    demo_parser.set_defaults(handler=demo)
    docs_parser = commands.add_parser("docs", help="build dbt docs and GX Data Docs in site/")
    _add_warehouse_options(docs_parser)
    docs_parser.set_defaults(handler=docs)
    report_parser = commands.add_parser("report", help="write the HTML journey report")
    report_parser.add_argument(
        "--out", type=Path, help="HTML file (default: JOURNEY_REPORT_DIR/journey_report.html)"
    )
    _add_warehouse_options(report_parser)
    report_parser.set_defaults(handler=report)
    arguments = parser.parse_args(argv)
    arguments.handler(arguments)


if __name__ == "__main__":
    main()
