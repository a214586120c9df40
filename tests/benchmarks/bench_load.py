"""Raw loader throughput and memory against `psql \\copy` and pandas `to_sql`, measured in one run.

    python tests/benchmarks/bench_load.py [--rows N] [--to-sql-rows M] [--rounds R]

Generates N web events as JSON Lines (the demo's web_events shape, 0.1 % malformed), then:
  1. our loader (`journeyflow.loading.load_file`, the code the DAG runs) in a child process:
     rows/s, CPU (with its encoding worker processes) and peak memory (maxrss), for N/4 rows
     and for N rows, into a new raw table (a source's first load);
  2. `psql \\copy` of the same JSONL file into a one-column jsonb table;
  3. `psql \\copy` of the same rows, exported as CSV, into a table equivalent to ours
     (typed columns, load metadata and the jsonb record);
  4. peak memory of parsing the same events as one JSON array, N/4 and N records;
  5. pandas `DataFrame.to_sql` (method="multi") of the first M rows;
  6. our loader once more, into a raw table that already holds N/4 rows (a later load).
Steps 1-3 run R rounds, one after the other within each round, so that a shared machine's
load hits all three alike: each round's ratios are printed, and the summary compares each
method's best round. Everything runs against a scratch database that is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = {
    "sources": {
        "web_events": {
            "kind": "files",
            "path": "*.jsonl",
            "format": "jsonl",
            "key": "event_id",
            "columns": {
                "event_id": {"type": "text", "required": True},
                "anonymous_id": {"type": "text", "required": True},
                "user_id": {"type": "text"},
                "email": {"type": "text"},
                "event": {"type": "text", "required": True},
                "url": {"type": "text"},
                "device": {"type": "text"},
                "ts": {"type": "timestamp", "required": True},
            },
        }
    }
}
EVENTS = ["page_view", "product_view", "add_to_cart", "checkout_started", "signup", "login"]
DEVICES = ["desktop", "mobile", "tablet"]


def generate_events(path: Path, rows: int, seed: int = 7) -> None:
    """Deterministic web events, one JSON object per line; every 1000th has a broken timestamp."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for number in range(rows):
            person = rng.randrange(rows // 8 + 1)
            event = EVENTS[rng.randrange(len(EVENTS))]
            signed_in = event in ("signup", "login") or rng.random() < 0.3
            record = {
                "event_id": f"evt-{number:09d}",
                "anonymous_id": f"anon-{person:08d}",
                "user_id": f"user-{person:08d}" if signed_in else None,
                "email": f" Person.{person}@Example.com" if event in ("signup", "login") else None,
                "event": event,
                "url": f"https://shop.example.com/p/{rng.randrange(5000)}?utm_source=news",
                "device": DEVICES[rng.randrange(3)],
                "ts": "not-a-time"
                if number % 1000 == 999
                else f"2026-10-{1 + number % 30:02d}T{number % 24:02d}:{number % 60:02d}:00Z",
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")


def head(source: Path, target: Path, rows: int) -> None:
    with open(source, encoding="utf-8") as reader, open(target, "w", encoding="utf-8") as writer:
        for _, line in zip(range(rows), reader, strict=False):
            writer.write(line)


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import pgserver  # the embedded server bundles psql

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


def psql(url: str, command: str) -> float:
    """Run one psql meta-command; seconds it took."""
    started = time.perf_counter()
    subprocess.run(
        [psql_binary(), url, "-v", "ON_ERROR_STOP=1", "-q", "-c", command],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


SELF_STAT = "select pg_read_file('/proc/self/stat')"  # the backend's own CPU (Linux servers)


def cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from a /proc/<pid>/stat line."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def psql_copy(url: str, command: str) -> tuple[float, float]:
    """Run one psql \\copy; (seconds it took, CPU seconds its server backend used)."""
    started = time.perf_counter()
    output = subprocess.run(
        [psql_binary(), url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", command, "-c", SELF_STAT],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, cpu_seconds(output.stdout.strip().splitlines()[-1])


def run_loader_child(url: str, data_dir: Path, file_name: str, first_file: str = "") -> dict:
    """Our loader in a fresh process so that its peak memory is its own.

    With `first_file`, that file is loaded first (not timed): the timed load then goes into a
    raw table that holds rows, as every load after a source's first does.
    """
    output = subprocess.run(
        [sys.executable, __file__, "--child", url, str(data_dir), file_name, first_file],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
    )
    if output.returncode:
        raise SystemExit(f"the loader failed:\n{output.stderr}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def _own_and_workers_cpu() -> float:
    """CPU seconds of this process and of its finished children (the loader's encoding workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def loader_child(url: str, data_dir: str, file_name: str, first_file: str = "") -> None:
    import resource

    import psycopg

    from journeyflow import loading
    from journeyflow.sources import parse_sources

    spec = parse_sources(SOURCE)["web_events"]
    with psycopg.connect(url) as conn:
        conn.execute("drop table if exists raw.web_events, raw.web_events__rejected cascade")
        loading.ensure_raw_schema(conn, spec)
        conn.execute("delete from raw._load_batches where source = 'web_events'")
        conn.commit()
        workers = os.environ.get("JOURNEY_BENCH_WORKERS")
        chunking = loading.Chunking(workers=None if workers is None else int(workers))
        if first_file:
            first = Path(data_dir) / first_file
            loading.load_file(conn, spec, first, Path(data_dir), "bench", chunking=chunking)
        server_cpu = cpu_seconds(conn.execute(SELF_STAT).fetchone()[0])
        client_cpu = _own_and_workers_cpu()
        started = time.perf_counter()
        path = Path(data_dir) / file_name
        result = loading.load_file(conn, spec, path, Path(data_dir), "bench", chunking=chunking)
        seconds = time.perf_counter() - started
        client_cpu = _own_and_workers_cpu() - client_cpu
        server_cpu = cpu_seconds(conn.execute(SELF_STAT).fetchone()[0]) - server_cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "worker_peak_mib": worker_peak_kib / 1024,
                "rows": result.rows_loaded + result.rows_rejected,
                "loaded": result.rows_loaded,
                "rejected": result.rows_rejected,
                "seconds": seconds,
                "client_cpu": client_cpu,
                "server_cpu": server_cpu,
                "peak_mib": peak_kib / 1024,
            }
        )
    )


def json_array(source: Path, target: Path, rows: int) -> None:
    """The first `rows` events as one JSON array (the shape of webhook and export files)."""
    with open(source, encoding="utf-8") as reader, open(target, "w", encoding="utf-8") as writer:
        writer.write("[\n")
        for number, line in zip(range(rows), reader, strict=False):
            writer.write(("," if number else "") + line)
        writer.write("]\n")


def read_array_child(path: str) -> None:
    """Parse and type a JSON array file without loading it; prints rows and peak memory."""
    import resource

    from journeyflow.readers import read_source_file
    from journeyflow.sources import parse_sources

    source = {**SOURCE["sources"]["web_events"], "format": "json", "path": "*.json"}
    spec = parse_sources({"sources": {"web_events": source}})["web_events"]
    rows = sum(1 for _ in read_source_file(Path(path), spec))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "peak_mib": peak_kib / 1024}))


def run_read_child(path: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child-read", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
    )
    if output.returncode:
        raise SystemExit(f"the reader failed:\n{output.stderr}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def to_sql_rate(url: str, path: Path, rows: int) -> float:
    import pandas as pd
    from sqlalchemy import create_engine

    from journeyflow.warehouse import sqlalchemy_url

    frame = pd.read_json(path, lines=True, nrows=rows, dtype=False)
    engine = create_engine(sqlalchemy_url(url))
    started = time.perf_counter()
    frame.to_sql(
        "web_events_pandas",
        engine,
        schema="bench",
        if_exists="replace",
        index=False,
        method="multi",
        chunksize=1000,
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return len(frame) / seconds


def measure_round(url: str, work: Path, number: int) -> dict:
    """Our loader, then `\\copy` of the same JSONL into jsonb, then into the equivalent table."""
    import psycopg

    big, exported = work / "events.jsonl", work / "events_equivalent.csv"
    print(f"round {number + 1}: our loader (load_file: parse, type, quarantine, COPY) ...")
    ours = run_loader_child(url, work, "events.jsonl")
    print(f"round {number + 1}: psql \\copy of the same JSONL file into a jsonb column ...")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop table if exists bench.events_jsonb, bench.web_events")
        conn.execute("create table bench.events_jsonb (record jsonb not null)")
        conn.execute("create table bench.web_events (like raw.web_events)")
    jsonl_seconds, jsonl_cpu = psql_copy(
        url,
        f"\\copy bench.events_jsonb (record) from '{big}'"
        " with (format csv, quote e'\\x01', delimiter e'\\x02')",
    )
    print(f"round {number + 1}: psql \\copy of the same rows as CSV into an equivalent table ...")
    if not exported.exists():
        psql(url, f"\\copy raw.web_events to '{exported}' with (format csv)")
    equivalent_seconds, _ = psql_copy(
        url, f"\\copy bench.web_events from '{exported}' with (format csv)"
    )
    result = {
        "ours": ours,
        "ours_rate": ours["rows"] / ours["seconds"],
        "jsonl_rate": ours["rows"] / jsonl_seconds,
        "equivalent_rate": ours["loaded"] / equivalent_seconds,
    }
    print(
        f"  CPU per row: ours {ours['client_cpu'] / ours['rows'] * 1e6:.1f} us in the loader"
        " (and its workers) +"
        f" {ours['server_cpu'] / ours['rows'] * 1e6:.1f} us in its server backend;"
        f" \\copy JSONL {jsonl_cpu / ours['rows'] * 1e6:.1f} us in its server backend"
    )
    print(
        f"  ours {result['ours_rate']:,.0f} rows/s, \\copy JSONL {result['jsonl_rate']:,.0f},"
        f" \\copy equivalent {result['equivalent_rate']:,.0f}: ours/JSONL"
        f" {result['ours_rate'] / result['jsonl_rate']:.2f}x, ours/equivalent"
        f" {result['ours_rate'] / result['equivalent_rate']:.2f}x",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=int(os.environ.get("N", 2_000_000)))
    parser.add_argument("--to-sql-rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, help="encoding worker processes (0: in-process; default: auto)"
    )
    arguments = parser.parse_args()
    rows = arguments.rows
    if arguments.workers is not None:
        os.environ["JOURNEY_BENCH_WORKERS"] = str(arguments.workers)

    import psycopg

    from journeyflow import warehouse

    server = os.environ.get("JOURNEY_BENCH_SERVER_URL") or warehouse.local_server_url("postgres")
    if not server:
        raise SystemExit("no PostgreSQL answers on 127.0.0.1:5432 (set JOURNEY_BENCH_SERVER_URL)")
    name = f"journey_bench_{uuid.uuid4().hex[:8]}"
    url = warehouse.with_database(server, name)
    warehouse.ensure_database(url)
    work = Path(tempfile.mkdtemp(prefix="journey_bench_"))
    try:
        print(f"generating {rows:,} web events (JSON Lines) ...", flush=True)
        big = work / "events.jsonl"
        generate_events(big, rows)
        small_rows = max(1, rows // 4)
        head(big, work / "events_quarter.jsonl", small_rows)
        size_mib = big.stat().st_size / (1 << 20)
        print(f"  {big.stat().st_size / rows:.0f} bytes per row, {size_mib:.0f} MiB", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create schema raw; create schema bench")

        quarter = run_loader_child(url, work, "events_quarter.jsonl")
        rounds = [measure_round(url, work, number) for number in range(arguments.rounds)]

        print("reading the same events as one JSON array (memory only) ...", flush=True)
        json_array(big, work / "events_quarter.json", small_rows)
        json_array(big, work / "events.json", rows)
        array_quarter = run_read_child(work / "events_quarter.json")
        array_full = run_read_child(work / "events.json")

        to_sql_rows = min(arguments.to_sql_rows, rows)
        print(f"pandas DataFrame.to_sql (method='multi') of {to_sql_rows:,} rows ...", flush=True)
        pandas_rate = to_sql_rate(url, big, to_sql_rows)
        print("our loader into a raw table that already holds rows (after a first file) ...")
        populated = run_loader_child(url, work, "events.jsonl", "events_quarter.jsonl")
    finally:
        with psycopg.connect(warehouse.with_database(server, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
        shutil.rmtree(work, ignore_errors=True)

    ours = max(rounds, key=lambda result: result["ours_rate"])["ours"]
    ours_rate = max(result["ours_rate"] for result in rounds)
    jsonl_rate = max(result["jsonl_rate"] for result in rounds)
    equivalent_rate = max(result["equivalent_rate"] for result in rounds)
    print()
    print(f"rows: {rows:,} web events ({ours['loaded']:,} loaded, {ours['rejected']:,} rejected)")
    print(f"best of {len(rounds)} rounds for the first three:")
    print(f"our loader                            {ours_rate:>10,.0f} rows/s")
    print(f"psql \\copy, same JSONL into jsonb     {jsonl_rate:>10,.0f} rows/s")
    print(f"psql \\copy, equivalent table (CSV)    {equivalent_rate:>10,.0f} rows/s")
    print(f"pandas to_sql (multi, {to_sql_rows:,} rows)    {pandas_rate:>10,.0f} rows/s")
    print(f"ours / \\copy same JSONL               {ours_rate / jsonl_rate:>10.2f}x  (goal >= 0.7)")
    print(f"ours / \\copy equivalent table         {ours_rate / equivalent_rate:>10.2f}x")
    populated_rate = populated["rows"] / populated["seconds"]
    print(
        f"ours into a table holding rows         {populated_rate:>10,.0f} rows/s"
        f"  ({populated_rate / jsonl_rate:.2f}x \\copy same JSONL; the first load of a source"
        " builds the key index after COPY, later loads insert into it)"
    )
    print(f"ours / pandas to_sql                  {ours_rate / pandas_rate:>10.1f}x  (goal >= 10)")
    workers = (
        f"each encoding worker's peak {quarter['worker_peak_mib']:.0f} MiB and"
        f" {ours['worker_peak_mib']:.0f} MiB"
        if ours["worker_peak_mib"]
        else "encoded by a thread, no worker processes"
    )
    print(
        f"peak memory of our loader: {quarter['peak_mib']:.0f} MiB for {quarter['rows']:,} rows,"
        f" {ours['peak_mib']:.0f} MiB for {ours['rows']:,} rows"
        f" (ratio {ours['peak_mib'] / quarter['peak_mib']:.2f} for 4x the rows); {workers}"
    )
    print(
        f"peak memory reading a JSON array: {array_quarter['peak_mib']:.0f} MiB for"
        f" {array_quarter['rows']:,} records, {array_full['peak_mib']:.0f} MiB for"
        f" {array_full['rows']:,} records"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        loader_child(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-read":
        read_array_child(sys.argv[2])
    else:
        main()
