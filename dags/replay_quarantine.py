"""
### replay_quarantine

Re-ingest rows that were rejected at load and have since been fixed by a person. Fix a row by
writing the corrected record as JSON into `_fixed_record` of `raw.<source>__rejected`, e.g.

```sql
update raw.orders__rejected
set _fixed_record = '{"order_id": "o-17", "customer_email": "a@example.com", "amount": "12.50",
                      "currency": "USD", "status": "completed", "ts": "2026-10-03T10:00:00Z"}'
where _source_file = 'orders/orders.csv' and _line_number = 18;
```

then trigger this DAG (optionally with conf `{"sources": ["orders"]}`). Each fixed row lands in
`raw.<source>` once (`_replayed_at` records it); a fix that is still invalid keeps its row in
quarantine with `_replay_error`. The next `journey_pipeline` run gates and uses the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from journeyflow import alerts, pipeline, redaction


@dag(
    dag_id="replay_quarantine",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["journeys", "data-quality"],
    params={"sources": Param(pipeline.source_names(), type="array")},
    default_args={
        "owner": "data-engineering",
        "retries": 1,
        "retry_delay": timedelta(seconds=10),
        "on_execute_callback": redaction.mask_task_secrets,
        "on_failure_callback": alerts.notify_task_failure,
    },
)
def replay_quarantine():
    @task
    def selected_sources(params: dict | None = None) -> list[str]:
        return list(params["sources"])

    @task
    def replay_source(source_name: str) -> dict:
        return pipeline.replay_quarantine(source_name)

    replay_source.expand(source_name=selected_sources())


dag_object = replay_quarantine()

if __name__ == "__main__":
    dag_object.test()
