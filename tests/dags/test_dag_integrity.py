"""Every DAG imports cleanly, touches no database while parsing and is wired as documented."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.conftest import PIPELINE_TASKS

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "journey_pipeline" in dagbag.dags


def test_parsing_opens_no_network_or_database_connection(monkeypatch):
    import psycopg
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise AssertionError(f"DAG parsing opened a connection: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(psycopg, "connect", refuse)
    started = time.monotonic()
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    assert time.monotonic() - started < 10


def test_pipeline_order(dagbag):
    dag = dagbag.dags["journey_pipeline"]
    chain = PIPELINE_TASKS
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        assert downstream in dag.task_dict[upstream].downstream_task_ids


def test_dag_conventions(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.max_active_runs == 1
        assert dag.catchup is False
        for task in dag.tasks:
            assert task.owner == "data-engineering"


def test_heavy_libraries_not_imported_by_parsing():
    import subprocess
    import sys

    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag;"
        f"DagBag(dag_folder={str(DAGS_FOLDER)!r});"
        "heavy = [m for m in ('great_expectations', 'dbt', 'sendgrid', 'pandas')"
        " if m in sys.modules];"
        "print('HEAVY=' + ','.join(heavy))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    marker = [line for line in output.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker == ["HEAVY="], marker


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("    kind: ftp\n    key: id\n", "sources.orders.kind: 'ftp' is not one of"),
        (
            "    kind: postgres_table\n    connection: ops\n    key: id\n"
            "    columns: {id: {type: text}, changed: {type: timestamp}}\n"
            "    incremental: {field: changed}\n",
            "sources.orders.table: required field is missing",
        ),
    ],
)
def test_broken_sources_file_is_an_import_error_naming_the_yaml_path(
    tmp_path, monkeypatch, source, message
):
    from airflow.dag_processing.dagbag import DagBag

    broken = tmp_path / "sources.yml"
    broken.write_text("sources:\n  orders:\n" + source)
    monkeypatch.setenv("JOURNEY_SOURCES_FILE", str(broken))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert "journey_pipeline" not in bag.dags
    assert bag.import_errors, "a broken sources file must fail DAG parsing"
    for error in bag.import_errors.values():
        assert f"{broken}: {message}" in error
