"""The demo's progress printer keeps task starts, pipeline messages and failures, drops the noise."""

from __future__ import annotations

from journeyflow.progress import ProgressPrinter

LINES = """\
2026-11-23T05:29:11.816481Z [warning  ] Could not import graphviz. [py.warnings] category=UserWarning
2026-11-23T05:25:46.317348Z [info     ] [DAG TEST] starting task_id=extract_source map_index=2 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-23T05:25:46.405190Z [info     ] orders: loaded 4014 rows (8 rejected) from orders/orders.csv [journeyflow.loading] loc=loading.py:165
2026-11-23T05:25:46.405190Z [info     ] dbt | 05:26:04  12 of 26 START test not_null_x [journeyflow.dbt_runner] loc=dbt_runner.py:37
2026-11-23T05:25:46.405190Z [info     ] dbt | 05:26:05  Done. PASS=26 WARN=0 ERROR=0 SKIP=0 [journeyflow.dbt_runner] loc=dbt_runner.py:37
2026-11-23T05:25:48.581487Z [info     ] [DAG TEST] starting task_id=gate_raw map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-23T05:25:48.581487Z [error    ] Task failed; ti=gate_raw [airflow.sdk.definitions.dag] loc=dag.py:1
Traceback (most recent call last):
journeyflow.quality.DataQualityError: gate_raw failed 1 check(s):
  - raw.orders: expect_column_values_to_be_between(column='amount', min_value=0) failed
2026-11-23T05:26:05.264755Z [info     ] DagRun Finished: dag_id=journey_pipeline, run_id=x, state=failed, run_type=manual [airflow.models.dagrun.DagRun] loc=dagrun.py:1315
"""


def test_condensed_progress():
    shown: list[str] = []
    printer = ProgressPrinter(shown.append)
    for line in LINES.splitlines():
        printer.feed(line)
    assert shown == [
        "  > extract_source[2]",
        "    orders: loaded 4014 rows (8 rejected) from orders/orders.csv",
        "    05:26:05  Done. PASS=26 WARN=0 ERROR=0 SKIP=0",
        "  > gate_raw",
        "    ! Task failed; ti=gate_raw",
        "    Traceback (most recent call last):",
        "    journeyflow.quality.DataQualityError: gate_raw failed 1 check(s):",
        "      - raw.orders: expect_column_values_to_be_between(column='amount', min_value=0) failed",
        "  = run finished: failed",
    ]
    assert printer.state == "failed"
