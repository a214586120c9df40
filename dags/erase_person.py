"""
### erase_person

Honour an erasure request (GDPR art. 17): remove one person from the whole warehouse and make
sure they are never stitched, loaded or mailed again. Trigger it with the identifier the person
gave, e.g. conf `{"identifier": "Ann@Example.com"}`; `identifier_type` (`email`, `phone`,
`user_id`, `crm_id`, `anonymous_id`, `profile_id`) is optional: without it an e-mail, phone
number or profile id is recognised and any other value is tried as user, CRM and device id.

1. `erase_person_data`: normalises the identifier like identity resolution does, finds the
   person's profiles and every identifier of theirs in the identity graph, writes tombstones
   (SHA-256 digests only) to `activation.erased_identifiers` and queues their e-mail addresses
   for suppression, commits, then deletes their rows in every table (raw records and
   quarantined rows, identity graph, marts, activation, reporting) and redacts their values
   anywhere else, in one transaction. `ops.erasure_requests` records the request (identifier
   digest only) and the rows affected per table.
2. `suppress_in_sendgrid`: adds the queued addresses to SendGrid's global suppressions
   through the API, once; afterwards only their digests remain.

Later loads drop records carrying a tombstoned identifier, so the person does not come back
even if the source files still hold them. Re-running a request is harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from journeyflow import alerts, erasure_requests, redaction
from journeyflow.erasure_identifiers import IDENTIFIER_TYPES
from journeyflow.pools import DBT_POOL, SENDGRID_POOL


@dag(
    dag_id="erase_person",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["journeys", "gdpr", "sendgrid"],
    params={
        "identifier": Param(type="string", minLength=1),
        "identifier_type": Param(None, type=["null", "string"], enum=[None, *IDENTIFIER_TYPES]),
    },
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "on_execute_callback": redaction.mask_task_secrets,
        "on_failure_callback": alerts.notify_task_failure,
    },
)
def erase_person():
    # the warehouse_dbt pool keeps a dbt build from rewriting tables while they are erased
    @task(pool=DBT_POOL)
    def erase_person_data(run_id: str | None = None, params: dict | None = None) -> dict:
        return erasure_requests.erase_person(run_id, params)

    @task(pool=SENDGRID_POOL)
    def suppress_in_sendgrid() -> dict:
        return erasure_requests.suppress_in_sendgrid()

    erase_person_data() >> suppress_in_sendgrid()


dag_object = erase_person()

if __name__ == "__main__":
    dag_object.test()
