"""Benchmark: identity resolution in the warehouse against an in-memory union-find in Python.

Builds an identity graph of N identifiers (default 1,000,000) from raw records with a
realistic mix of components (anonymous visitors, guest orders, CRM leads, customers with
several devices, households sharing a device, long chains up to 50 identifiers, a few big
fans), runs the dbt identity models on it and prints, from one run:
  - resolution time in the warehouse (dbt model int_identifiers_resolved, full build);
  - an in-memory union-find in Python over the same edges, read from the warehouse;
  - their ratio; then an incremental run with a small batch of new records.

    make bench-identity            # N=1000000
    make bench-identity N=200000
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from journeyflow import loading, warehouse
from journeyflow.dbt_runner import run_dbt
from journeyflow.settings import load_settings
from journeyflow.sources import load_sources

START = datetime(2025, 1, 1, tzinfo=UTC)
RAW_COLUMNS = {
    "web_events": ["event_id", "anonymous_id", "user_id", "email", "event", "ts"],
    "crm_contacts": ["crm_id", "user_id", "email", "phone", "country", "updated_at"],
    "orders": ["order_id", "customer_email", "amount", "currency", "status", "ts"],
}
# share of identifiers per kind of component
MIX = {
    "visitor": 0.25,
    "guest_order": 0.03,
    "lead": 0.10,
    "customer": 0.455,
    "household": 0.03,
    "chain": 0.13,
    "fan": 0.005,
}


@dataclass
class Graph:
    """Raw records under construction, and how many identifiers they hold."""

    rng: random.Random
    batch: str = "bench-0001"
    identifiers: int = 0
    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    devices: list[str] = field(default_factory=list)
    accounts: list[tuple[str, str]] = field(default_factory=list)

    def new(self, kind: str) -> str:
        self.identifiers += 1
        number = self.identifiers
        if kind == "anonymous_id":
            return f"{self.rng.getrandbits(64):016x}-{number}"
        if kind == "email":
            return f"person{number}@example.com"
        if kind == "user_id":
            return f"u{number:08d}"
        if kind == "crm_id":
            return f"CRM-{number:08d}"
        return f"+1 {200 + number % 700} {number % 10_000_000:07d}"

    def when(self) -> datetime:
        return START + timedelta(seconds=self.rng.randrange(365 * 86400))

    def event(self, anonymous_id, user_id=None, email=None, name="page_view") -> None:
        row_id = f"e{len(self.rows['web_events'])}-{self.batch}"
        self.rows["web_events"].append((row_id, anonymous_id, user_id, email, name, self.when()))

    def contact(self, user_id, email, phone) -> None:
        crm_id = self.new("crm_id")
        self.rows["crm_contacts"].append((crm_id, user_id, email, phone, "US", self.when()))

    def order(self, email) -> None:
        row_id = f"o{len(self.rows['orders'])}-{self.batch}"
        amount = round(self.rng.uniform(10, 300), 2)
        self.rows["orders"].append((row_id, email, amount, "USD", "completed", self.when()))


def visitor(graph: Graph) -> None:
    device = graph.new("anonymous_id")
    graph.devices.append(device)
    for _ in range(graph.rng.randint(1, 2)):
        graph.event(device)


def guest_order(graph: Graph) -> None:
    graph.order(graph.new("email"))


def lead(graph: Graph) -> None:
    phone = graph.new("phone") if graph.rng.random() < 0.7 else None
    graph.contact(None, graph.new("email"), phone)


def customer(graph: Graph, shared_device: str | None = None, logins: int = 1) -> str:
    user_id, email = graph.new("user_id"), graph.new("email")
    graph.accounts.append((user_id, email))
    for _ in range(graph.rng.choice((1, 1, 1, 2, 2, 3))):
        device = graph.new("anonymous_id")
        graph.event(device)
        graph.event(device, user_id, email, "login")
    if shared_device:
        for _ in range(logins):
            graph.event(shared_device, user_id, email, "login")
    if graph.rng.random() < 0.7:
        graph.contact(user_id, email, graph.new("phone") if graph.rng.random() < 0.8 else None)
    for _ in range(graph.rng.choice((0, 0, 1, 1, 2, 3))):
        graph.order(email)
    return user_id


def household(graph: Graph) -> None:
    """Two accounts logging in on one shared device: a limit rule must keep them apart."""
    shared = graph.new("anonymous_id")
    customer(graph, shared, logins=3)
    customer(graph, shared, logins=1)


def chain(graph: Graph) -> None:
    """Newsletter sign-ups hopping device to e-mail to device: one path of up to 50."""
    length = graph.rng.randint(5, 50)
    device = graph.new("anonymous_id")
    for _ in range((length - 1) // 2):
        email = graph.new("email")
        graph.event(device, None, email, "newsletter_signup")
        device = graph.new("anonymous_id")
        graph.event(device, None, email, "newsletter_signup")


def fan(graph: Graph) -> None:
    """A shop-floor tablet many people typed their e-mail on."""
    tablet = graph.new("anonymous_id")
    for _ in range(graph.rng.randint(150, 400)):
        graph.event(tablet, None, graph.new("email"), "newsletter_signup")


SEGMENTS = {
    "visitor": visitor,
    "guest_order": guest_order,
    "lead": lead,
    "customer": customer,
    "household": household,
    "chain": chain,
    "fan": fan,
}


def build_graph(identifiers: int, seed: int) -> Graph:
    """Raw records holding about `identifiers` identifiers, mixed as MIX says (interleaved)."""
    graph = Graph(random.Random(seed))
    targets = {kind: share * identifiers for kind, share in MIX.items()}
    made = dict.fromkeys(MIX, 0)
    kinds = list(MIX)
    while graph.identifiers < identifiers:
        open_kinds = [kind for kind in kinds if made[kind] < targets[kind]] or ["visitor"]
        kind = graph.rng.choices(open_kinds, weights=[MIX[k] for k in open_kinds])[0]
        before = graph.identifiers
        SEGMENTS[kind](graph)
        made[kind] += graph.identifiers - before
    return graph


def late_batch(graph: Graph, visitors: int, links: int) -> Graph:
    """New records for an incremental run: new visitors, and logins that link known devices
    to known accounts (each merges two existing profiles)."""
    batch = Graph(graph.rng, batch="bench-0002", identifiers=graph.identifiers)
    for _ in range(visitors):
        visitor(batch)
    for device, (user_id, email) in zip(
        graph.rng.sample(graph.devices, links), graph.rng.sample(graph.accounts, links), strict=True
    ):
        batch.event(device, user_id, email, "login")
    return batch


def load_raw(url: str, graph: Graph) -> int:
    """COPY the records into the raw tables (created from the sources file)."""
    settings = load_settings()
    specs = load_sources(settings.sources_file)
    loaded_at = datetime.now(UTC)
    total = 0
    with psycopg.connect(url) as conn:
        for spec in specs.values():
            loading.ensure_raw_schema(conn, spec)
        for table, rows in graph.rows.items():
            columns = RAW_COLUMNS[table] + [
                "_batch_id",
                "_source_file",
                "_line_number",
                "_loaded_at",
                "_record",
            ]
            statement = f"copy raw.{table} ({', '.join(columns)}) from stdin"
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for line, row in enumerate(rows, start=1):
                    copy.write_row((*row, graph.batch, f"{table}/bench", line, loaded_at, "{}"))
            total += len(rows)
    return total


def run_model(url: str, select: str, target_dir: Path) -> tuple[float, float, dict]:
    """dbt run of `select`: (wall seconds, seconds executing int_identifiers_resolved, results)."""
    settings = load_settings()
    started = time.perf_counter()
    output = run_dbt(
        ["run", "--select", select, "--target-path", str(target_dir)],
        settings.dbt_project_dir,
        url,
    )
    wall = time.perf_counter() - started
    for line in output.splitlines():
        if any(marker in line for marker in ("identity resolution (", "converged", "steps:")):
            print("  dbt | " + line[line.index("identity resolution") :])
    results = json.loads((target_dir / "run_results.json").read_text())
    timings = {
        result["unique_id"].split(".")[-1]: result["execution_time"]
        for result in results["results"]
    }
    return wall, timings.get("int_identifiers_resolved", 0.0), timings


def union_find(url: str) -> tuple[dict[str, str], float, float]:
    """Components of the active identity edges in Python: (root per identifier, read s, union s)."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select left_identifier_type, left_identifier_value,"
            " right_identifier_type, right_identifier_value"
            " from intermediate.int_identity_edges where is_active"
        ).fetchall()
    read = time.perf_counter() - started
    started = time.perf_counter()
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left_type, left_value, right_type, right_value in rows:
        left = f"{left_type}:{left_value}"
        right = f"{right_type}:{right_value}"
        parent.setdefault(left, left)
        parent.setdefault(right, right)
        left_root, right_root = find(left), find(right)
        if left_root != right_root:
            parent[left_root] = right_root
    roots = {node: find(node) for node in parent}
    return roots, read, time.perf_counter() - started


def check_against(url: str, roots: dict[str, str]) -> tuple[int, int]:
    """Every profile lies inside one union-find component, and a component holds several
    profiles only when a limit rule had to split it (it holds several user_ids).
    Returns (profiles, components)."""
    with psycopg.connect(url) as conn:
        resolved = conn.execute(
            "select identifier_key, profile_id from intermediate.int_identifiers_resolved"
        ).fetchall()
    if len(resolved) != len(roots):
        raise AssertionError(f"{len(resolved)} identifiers resolved, {len(roots)} in the graph")
    component_of_profile: dict[str, str] = {}
    profiles_of_component: dict[str, set[str]] = defaultdict(set)
    user_ids: dict[str, int] = defaultdict(int)
    for key, profile_id in resolved:
        root = roots[key]
        if component_of_profile.setdefault(profile_id, root) != root:
            raise AssertionError(f"profile {profile_id} spans two components")
        profiles_of_component[root].add(profile_id)
        user_ids[root] += key.startswith("user_id:")
    for root, profiles in profiles_of_component.items():
        if len(profiles) > 1 and user_ids[root] < 2:
            raise AssertionError(f"component of {root} split without a limit conflict")
    return len(component_of_profile), len(profiles_of_component)


def scratch_database(server_url: str) -> str:
    url = warehouse.with_database(server_url, f"journey_bench_{uuid.uuid4().hex[:8]}")
    warehouse.ensure_database(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    name = warehouse.database_name(url)
    with psycopg.connect(warehouse.with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(
            zip(
                ("identifiers", "links", "profiles", "largest", "cut"),
                conn.execute(
                    "select (select count(*) from intermediate.int_identifiers_resolved),"
                    " (select count(*) from intermediate.int_identity_edges"
                    "   where is_active and not is_self_edge),"
                    " (select count(distinct profile_id)"
                    "   from intermediate.int_identifiers_resolved),"
                    " (select max(cluster_size) from intermediate.int_identifiers_resolved),"
                    " (select count(*) from intermediate.int_identity_links_cut)"
                ).fetchone(),
                strict=True,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    server_url = warehouse.local_server_url("postgres") or warehouse.embedded_server_url(
        load_settings().project_root / ".warehouse" / "bench-pgdata", "postgres"
    )
    url = scratch_database(server_url)
    try:
        with tempfile.TemporaryDirectory() as target:
            target_dir = Path(target)
            started = time.perf_counter()
            graph = build_graph(args.identifiers, args.seed)
            records = load_raw(url, graph)
            print(
                f"graph: {graph.identifiers:,} identifiers in {records:,} raw records"
                f" (generated and loaded in {time.perf_counter() - started:.1f} s)"
            )
            edges_wall, _, _ = run_model(url, "+int_identity_edges", target_dir)
            print(f"dbt: staging views and int_identity_edges built in {edges_wall:.1f} s")

            wall, warehouse_seconds, _ = run_model(url, "int_identifiers_resolved", target_dir)
            run_model(url, "int_identity_links_cut", target_dir)
            roots, read_seconds, union_seconds = union_find(url)
            python_seconds = read_seconds + union_seconds
            profiles, components = check_against(url, roots)
            figures = counts(url)
            print(
                f"resolved: {figures['identifiers']:,} identifiers, {figures['links']:,} links"
                f" -> {profiles:,} profiles (largest {figures['largest']}); union-find finds"
                f" {components:,} components; {figures['cut']:,} links cut by limit rules;"
                " check against union-find: ok"
            )
            print(
                f"warehouse resolution (int_identifiers_resolved, full build):"
                f" {warehouse_seconds:.2f} s  (dbt invocation wall time {wall:.2f} s)"
            )
            print(
                f"python union-find over the same edges: {python_seconds:.2f} s"
                f"  (read {read_seconds:.2f} s + union {union_seconds:.2f} s)"
            )
            print(
                f"ratio warehouse / union-find: {warehouse_seconds / python_seconds:.2f}x"
                "  (goal <= 3x)"
            )

            batch = late_batch(graph, visitors=1_000, links=200)
            load_raw(url, batch)
            wall, warehouse_seconds, timings = run_model(
                url, "int_identity_edges int_identifiers_resolved", target_dir
            )
            with psycopg.connect(url) as conn:
                rewritten, latest_profiles, merged = conn.execute(
                    "select count(*), count(distinct profile_id),"
                    " count(distinct previous_profile_id)"
                    " from intermediate.int_identifiers_resolved"
                    " where resolved_at = (select max(resolved_at)"
                    "   from intermediate.int_identifiers_resolved)"
                ).fetchone()
            total = counts(url)["identifiers"]
            print(
                f"incremental run (+{len(batch.rows['web_events']):,} web events: 1,000 new"
                f" visitors, 200 late logins): {rewritten:,} of {total:,} identifiers rewritten"
                f" in {latest_profiles:,} profiles, {merged:,} profiles merged away;"
                f" int_identity_edges {timings['int_identity_edges']:.2f} s,"
                f" int_identifiers_resolved {warehouse_seconds:.2f} s"
            )
    finally:
        drop_database(server_url, url)


if __name__ == "__main__":
    main()
