"""
### journey_pipeline

Touchpoints in, measured campaigns out: extract every declared source into `raw`, gate the raw
batch with Great Expectations, build identity-resolved profiles, journey stages and KPIs with dbt,
gate the marts, send rule-based campaigns through SendGrid exactly once, refresh the reporting
schema BI tools read and write the HTML journey report. A failed gate stops activation and
reporting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import chain, dag, task

from journeyflow import pipeline


@dag(
    dag_id="journey_pipeline",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["journeys", "dbt", "great_expectations", "sendgrid"],
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(seconds=10)},
)
def journey_pipeline():
    @task
    def prepare_warehouse() -> None:
        pipeline.prepare_warehouse()

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

    @task(retries=0)
    def gate_raw(run_id: str | None = None, data_interval_end=None) -> dict:
        return pipeline.gate("gate_raw", run_id, data_interval_end)

    @task
    def build_marts() -> None:
        pipeline.build_marts()

    @task(retries=0)
    def gate_marts(run_id: str | None = None, data_interval_end=None) -> dict:
        return pipeline.gate("gate_marts", run_id, data_interval_end)

    @task
    def send_campaigns(run_id: str | None = None, data_interval_end=None) -> list[dict]:
        return pipeline.send_campaigns(data_interval_end, run_id)

    @task
    def build_reporting(run_id: str | None = None) -> None:
        pipeline.build_reporting(run_id)

    @task(retries=0)
    def gate_reporting(run_id: str | None = None, data_interval_end=None) -> dict:
        return pipeline.gate("gate_reporting", run_id, data_interval_end)

    @task
    def publish_reporting() -> list[str]:
        return pipeline.publish_reporting()

    @task
    def render_journey_report() -> str:
        return pipeline.render_journey_report()

    chain(
        prepare_warehouse(),
        extract_source.expand(source_name=pipeline.source_names()),
        gate_raw(),
        build_marts(),
        gate_marts(),
        send_campaigns(),
        build_reporting(),
        gate_reporting(),
        publish_reporting(),
        render_journey_report(),
    )


dag_object = journey_pipeline()

if __name__ == "__main__":
    dag_object.test()
