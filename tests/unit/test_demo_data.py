"""Unit tests for the seeded demo data generator."""

from __future__ import annotations

import csv
import json
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from journeyflow.demo_data import SOURCE_FILES, count_malformed, generate_demo_data, main

SOURCES_YML = Path(__file__).resolve().parents[2] / "dags" / "config" / "sources.yml"
DAYS = 120
WINDOW_END = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW_START = WINDOW_END - timedelta(days=DAYS)
MALFORMED_RATE = 0.01


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return yaml.safe_load(SOURCES_YML.read_text(encoding="utf-8"))["sources"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("demo")
    counts = generate_demo_data(out, customers=300, seed=7, malformed_rate=MALFORMED_RATE)
    return out, counts


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate_demo_data(out, customers=300, seed=7, malformed_rate=0)
    return out


def read_records(out: Path, source: str) -> list[dict[str, Any] | None]:
    """Every record of a source as written; None for a line that is not valid JSON."""
    path = out / SOURCE_FILES[source]
    if path.suffix == ".jsonl":
        return [_parse_line(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    return json.loads(path.read_text(encoding="utf-8"))


def _parse_line(line: str) -> dict[str, Any] | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def parse_timestamp(value: Any) -> datetime | None:
    if isinstance(value, int):
        return datetime.fromtimestamp(value, tz=UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def is_well_formed(record: dict[str, Any] | None, columns: dict[str, Any]) -> bool:
    """Whether a record satisfies the column rules sources.yml declares."""
    if record is None:
        return False
    for name, rule in columns.items():
        value = record.get(name)
        if value in (None, ""):
            if rule.get("required"):
                return False
            continue
        if rule["type"] == "timestamp" and parse_timestamp(value) is None:
            return False
        if rule["type"] == "numeric" and not re.fullmatch(r"-?\d+(\.\d+)?", str(value)):
            return False
        if rule["type"] == "boolean" and value not in ("true", "false", True, False):
            return False
    return True


def good_records(out: Path, source: str, contract: dict[str, Any]) -> list[dict[str, Any]]:
    columns = contract[source]["columns"]
    return [r for r in read_records(out, source) if is_well_formed(r, columns)]


def canonical(email: str) -> str:
    return email.strip().lower()


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_demo_data(first, customers=150, seed=3)
    generate_demo_data(second, customers=150, seed=3)
    generate_demo_data(other, customers=150, seed=4)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == len(SOURCE_FILES) + 1
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        assert b"\r\n" not in (first / name).read_bytes()
    web = SOURCE_FILES["web_events"]
    assert (first / web).read_bytes() != (other / web).read_bytes()


def test_counts_match_files_and_manifest(demo: tuple[Path, dict[str, int]]) -> None:
    out, counts = demo
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert set(counts) == set(SOURCE_FILES)
    assert manifest["rows"] == counts
    assert (manifest["seed"], manifest["customers"], manifest["end_date"]) == (7, 300, "2026-11-01")
    for source, count in counts.items():
        assert len(read_records(out, source)) == count, source
        assert count > 0, source


def test_csv_headers_follow_the_contract(demo: tuple[Path, dict[str, int]], contract) -> None:
    out, _ = demo
    for source in ("orders", "crm_contacts"):
        header = (out / SOURCE_FILES[source]).read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == list(contract[source]["columns"])


def test_well_formed_records_carry_every_contract_field(clean_dir: Path, contract) -> None:
    for source, spec in contract.items():
        records = read_records(clean_dir, source)
        assert all(is_well_formed(record, spec["columns"]) for record in records), source
        assert all(set(record) == set(spec["columns"]) for record in records), source
        keys = [record[spec["key"]] for record in records]
        assert len(keys) == len(set(keys)), f"{source} keys are not unique"


def test_timestamps_fall_inside_the_window(clean_dir: Path, contract) -> None:
    for source, spec in contract.items():
        stamp_columns = [c for c, rule in spec["columns"].items() if rule["type"] == "timestamp"]
        for record in read_records(clean_dir, source):
            for column in stamp_columns:
                if record[column] not in (None, ""):
                    moment = parse_timestamp(record[column])
                    assert WINDOW_START <= moment < WINDOW_END, (source, record)


def test_values_come_from_the_documented_vocabularies(clean_dir: Path) -> None:
    events = read_records(clean_dir, "web_events")
    assert {e["event"] for e in events} == {
        "page_view", "product_view", "add_to_cart", "checkout_started", "signup", "login",
    }  # fmt: skip
    assert {e["device"] for e in events} <= {
        "desktop",
        "mobile",
        "tablet",
        "ios_app",
        "android_app",
    }
    assert all(e["ts"].endswith("Z") for e in events)
    orders = read_records(clean_dir, "orders")
    assert {o["status"] for o in orders} == {"completed", "refunded", "cancelled"}
    assert all(re.fullmatch(r"\d+\.\d{2}", o["amount"]) for o in orders)
    tickets = read_records(clean_dir, "support_tickets")
    assert {t["status"] for t in tickets} == {"open", "pending", "solved"}
    assert {t["channel"] for t in tickets} <= {"email", "chat", "phone"}
    assert all((t["solved_at"] is None) == (t["status"] != "solved") for t in tickets)
    crm = read_records(clean_dir, "crm_contacts")
    consent = [c["email_consent"] == "true" for c in crm]
    assert 0.65 < sum(consent) / len(consent) < 0.95
    assert any(not c["phone"] for c in crm) and any(c["user_id"] for c in crm)
    mails = read_records(clean_dir, "email_events")
    assert all(isinstance(m["timestamp"], int) for m in mails)
    assert {"processed", "delivered", "open", "click", "bounce"} <= {m["event"] for m in mails}
    assert all(m["campaign_id"].startswith("newsletter_2026_") and m["send_id"] for m in mails)


def test_email_is_only_on_signup_and_login(clean_dir: Path) -> None:
    for event in read_records(clean_dir, "web_events"):
        assert (event["email"] is not None) == (event["event"] in ("signup", "login")), event


def test_same_person_email_is_spelled_differently_across_sources(clean_dir: Path) -> None:
    spellings: dict[str, set[str]] = defaultdict(set)
    for event in read_records(clean_dir, "web_events"):
        if event["email"]:
            spellings[canonical(event["email"])].add(event["email"])
    for order in read_records(clean_dir, "orders"):
        spellings[canonical(order["customer_email"])].add(order["customer_email"])
    for ticket in read_records(clean_dir, "support_tickets"):
        spellings[canonical(ticket["requester_email"])].add(ticket["requester_email"])
    for contact in read_records(clean_dir, "crm_contacts"):
        spellings[canonical(contact["email"])].add(contact["email"])
    varied = [email for email, seen in spellings.items() if len(seen) >= 2]
    assert len(varied) >= 10
    assert any(s != s.strip() for seen in spellings.values() for s in seen)


def test_phone_formats_vary(clean_dir: Path) -> None:
    phones = [c["phone"] for c in read_records(clean_dir, "crm_contacts") if c["phone"]]
    us_shapes = {re.sub(r"\d", "9", p) for p in phones if len(re.sub(r"\D", "", p)) in (10, 11)}
    assert {"+9 999 999 9999", "(999) 999-9999", "999.999.9999", "99999999999"} <= us_shapes


def test_anonymous_history_is_stitched_by_identification(clean_dir: Path) -> None:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in read_records(clean_dir, "web_events"):
        by_device[event["anonymous_id"]].append(event)
    identified = 0
    devices_per_user: dict[str, set[str]] = defaultdict(set)
    for anonymous_id, events in by_device.items():
        events.sort(key=lambda e: e["ts"])
        first = next((i for i, e in enumerate(events) if e["event"] in ("signup", "login")), None)
        if first is None:
            assert all(e["user_id"] is None for e in events), anonymous_id
            continue
        identified += 1
        user_id = events[first]["user_id"]
        assert first >= 1, "identification must follow anonymous browsing"
        assert all(e["user_id"] is None for e in events[:first])
        assert all(e["user_id"] == user_id for e in events[first:])
        devices_per_user[user_id].add(anonymous_id)
    assert identified >= 50
    assert any(len(devices) >= 2 for devices in devices_per_user.values())


def test_every_journey_stage_is_populated(clean_dir: Path) -> None:
    events = read_records(clean_dir, "web_events")
    orders = read_records(clean_dir, "orders")
    manifest = json.loads((clean_dir / "manifest.json").read_text(encoding="utf-8"))
    assert all(count > 0 for count in manifest["journeys"].values())
    completed: dict[str, list[datetime]] = defaultdict(list)
    for order in orders:
        if order["status"] == "completed":
            completed[canonical(order["customer_email"])].append(parse_timestamp(order["ts"]))
    repeat = [sorted(ts) for ts in completed.values() if len(ts) >= 2]
    assert any(ts[1] - ts[0] <= timedelta(days=60) for ts in repeat)
    assert any(max(ts) < WINDOW_END - timedelta(days=60) for ts in completed.values())
    user_email = {e["user_id"]: canonical(e["email"]) for e in events if e["event"] == "signup"}
    recent_interest = {
        e["user_id"]
        for e in events
        if e["user_id"]
        and e["event"] in ("product_view", "add_to_cart")
        and WINDOW_END - timedelta(days=20)
        <= parse_timestamp(e["ts"])
        < WINDOW_END - timedelta(days=3)
    }
    stalled = [u for u in recent_interest if user_email.get(u) not in completed]
    assert len(stalled) >= 10
    tickets = read_records(clean_dir, "support_tickets")
    assert any(t["status"] != "solved" for t in tickets)


def test_malformed_records_appear_at_the_requested_rate(
    demo: tuple[Path, dict[str, int]], contract
) -> None:
    out, counts = demo
    malformed = count_malformed(out)
    for source, total in counts.items():
        records = read_records(out, source)
        bad = sum(not is_well_formed(r, contract[source]["columns"]) for r in records)
        assert bad == malformed[source] == max(1, round(total * MALFORMED_RATE)), source
    web = read_records(out, "web_events")
    assert None in web and any(e and e["ts"] == "not-a-date" for e in web)
    assert any(o["amount"] == "n/a" for o in read_records(out, "orders"))
    assert any(c["updated_at"] == "" for c in read_records(out, "crm_contacts"))


def test_no_malformed_records_when_rate_is_zero(clean_dir: Path) -> None:
    assert set(count_malformed(clean_dir).values()) == {0}


def test_small_run_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    counts = generate_demo_data(tmp_path, customers=200, seed=11)
    assert time.perf_counter() - started < 2.0
    assert 1500 < counts["web_events"] < 8000


def test_rejects_a_window_too_short_for_the_journeys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="days"):
        generate_demo_data(tmp_path, customers=10, days=7)


def test_command_line_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--customers", "50", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert all(source in printed for source in SOURCE_FILES)
    assert (tmp_path / "manifest.json").exists()
