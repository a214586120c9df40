"""
### journey_pipeline

Touchpoints in, measured campaigns out: extract every declared source into `raw`, gate the raw
batch with Great Expectations, build identity-resolved profiles, journey stages and KPIs with dbt,
gate the marts, send rule-based campaigns through SendGrid exactly once, refresh the reporting
schema BI tools read and write the HTML journey report. A failed gate stops activation
and reporting.

A source that stays down fails alone: the other sources still land in raw and flow into the
marts, but activation and reporting wait for complete data. dbt builds and sending take the
`warehouse_dbt` and `sendgrid` pools (one slot each); every run ends with `record_run`, which
writes its `ops.pipeline_runs` row even when the run failed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import chain, dag, task, teardown

from journeyflow import alerts, pipeline, redaction
from journeyflow.pools import DBT_POOL, SENDGRID_POOL
from journeyflow.settings import load_settings


@dag(
    dag_id="journey_pipeline",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["journeys", "dbt", "great_expectations", "sendgrid"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(seconds=load_settings().retry_delay_seconds),
        "on_execute_callback": redaction.mask_task_secrets,
        "on_failure_callback": alerts.notify_task_failure,
    },
)
def journey_pipeline():
    @task
    def prepare_warehouse() -> dict:
        return pipeline.prepare_warehouse()

    @task(max_active_tis_per_dagrun=4)
    def extract_source(
        source_name: str,
        run_id: str | None = None,
        data_interval_start=None,
        data_interval_end=None,
        logical_date=None,
        dag_run=None,
    ) -> dict:
        interval_end = data_interval_end or logical_date or dag_run.run_after
        return pipeline.extract(source_name, run_id, interval_end, data_interval_start)

    @task(retries=0, trigger_rule="all_done_min_one_success")
    def gate_raw(run_id: str | None = None, data_interval_end=None) -> dict:
        return pipeline.gate("gate_raw", run_id, data_interval_end)

    @task(pool=DBT_POOL)
    def build_marts(data_interval_end=None) -> dict:
        return pipeline.build_marts(data_interval_end)

    @task(retries=0)
    def gate_marts(run_id: str | None = None, data_interval_end=None) -> dict:
        return pipeline.gate("gate_marts", run_id, data_interval_end)

    @task(pool=SENDGRID_POOL)
    def send_campaigns(run_id: str | None = None, data_interval_end=None) -> list[dict]:
        return pipeline.send_campaigns(data_interval_end, run_id)

    @task(pool=DBT_POOL)
    def build_reporting(run_id: str | None = None) -> dict:
        return pipeline.build_reporting(run_id)

    @task(retries=0)
    def gate_reporting(run_id: str | None = None, data_interval_end=None) -> dict:
        return pipeline.gate("gate_reporting", run_id, data_interval_end)

    @task
    def publish_reporting() -> list[str]:
        return pipeline.publish_reporting()

    @task
    def render_journey_report() -> str:
        return pipeline.render_journey_report()

    @teardown
    def record_run(ti=None, dag_run=None) -> dict:
        return pipeline.record_run(ti, dag_run)

    extracted = extract_source.expand(source_name=pipeline.source_names())
    sent = send_campaigns()
    steps = [
        prepare_warehouse(),
        extracted,
        gate_raw(),
        build_marts(),
        gate_marts(),
        sent,
        build_reporting(),
        gate_reporting(),
        publish_reporting(),
        render_journey_report(),
    ]
    chain(*steps)
    extracted >> sent  # campaigns only on complete data: a source that is down blocks sending
    steps >> record_run()


dag_object = journey_pipeline()

if __name__ == "__main__":
    dag_object.test()
