"""Activation throughput: deciding and sending through the outbox, against same-run baselines.

    python -m tests.benchmarks.bench_activation --profiles 50000

decide:  reading the audience alone (baseline) vs. the whole decision step (facts query,
         rules, decisions + assignments + outbox written), in profiles per second;
deliver: posting the same messages straight to the local SendGrid sink with the real client in
         batches of 1,000 (baseline) vs. delivering the outbox (claim, commit, post, mark).
Runs in a scratch database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import psycopg

from journeyflow import activation, audience, sendgrid_api
from journeyflow.sendgrid_sink import SendGridSink
from tests.conftest import _server_url
from tests.integration.activation_world import (
    AS_OF,
    FROM_EMAIL,
    World,
    campaign,
    config,
    fresh_warehouse,
    person,
)


def _timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def bench_decide(world: World, profiles: int) -> None:
    campaigns = config(campaign("bench", holdout_percent=10), global_control_percent=5)
    baseline, rows = _timed(
        lambda: world.conn.execute(
            audience.trigger_sql(campaigns.campaigns[0], audience.people_sql(world.conn)),
            audience.query_params(campaigns.campaigns[0], campaigns.policy, AS_OF),
        ).fetchall()
    )
    assert len(rows) == profiles
    seconds, reports = _timed(
        lambda: activation.record_decisions(world.conn, campaigns, AS_OF, "bench")
    )
    assert reports["bench"].candidates == profiles
    print(
        f"decide   baseline (audience read)   {profiles / baseline:>10,.0f} profiles/s"
        f"  ({baseline:.2f} s)"
    )
    print(
        f"decide   decision step              {profiles / seconds:>10,.0f} profiles/s"
        f"  ({seconds:.2f} s)  ratio {seconds / baseline:.1f}x baseline time"
    )


def bench_deliver(world: World) -> None:
    (bench,) = config(campaign("bench")).campaigns
    rows = world.rows(
        "select send_id, campaign_id, profile_id, email, template_id, variant, template_data,"
        " send_at from activation.campaign_sends order by send_id"
    )
    with SendGridSink() as sink:
        client = sendgrid_api.make_client("SG.bench", sink.url)

        def post_directly() -> None:
            for start in range(0, len(rows), 1000):
                batch = rows[start : start + 1000]
                body = sendgrid_api.mail_body(batch, FROM_EMAIL, False, f"b{start}", AS_OF)
                sendgrid_api.post_mail(client, body)

        baseline, _ = _timed(post_directly)
    with SendGridSink() as sink:
        delivery = activation.Delivery(
            client=sendgrid_api.make_client("SG.bench", sink.url),
            from_email=FROM_EMAIL,
            clock=lambda: AS_OF + timedelta(minutes=1),
        )
        report = activation.SendReport("bench")
        seconds, _ = _timed(lambda: activation.deliver(world.conn, bench, delivery, report))
        assert report.sent == len(rows) == len(sink.messages())
    print(
        f"deliver  baseline (direct POSTs)    {len(rows) / baseline:>10,.0f} messages/s"
        f"  ({baseline:.2f} s)"
    )
    print(
        f"deliver  outbox delivery            {len(rows) / seconds:>10,.0f} messages/s"
        f"  ({seconds:.2f} s)  ratio {seconds / baseline:.1f}x baseline time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=50_000)
    args = parser.parse_args()
    with (
        fresh_warehouse(_server_url()) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        world = World(url, conn, sink=None)
        world.add_people(*(person(f"p_{i:07d}") for i in range(args.profiles)))
        conn.execute("analyze")
        print(f"activation benchmark: {args.profiles:,} profiles, one campaign")
        bench_decide(world, args.profiles)
        bench_deliver(world)


if __name__ == "__main__":
    main()
