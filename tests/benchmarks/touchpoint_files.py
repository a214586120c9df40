"""Fast, flat-memory generator of large source files (web, orders, tickets, CRM, SendGrid)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Share of the touchpoints each source produces (tickets give two: opened and solved).
WEB_SHARE, EMAIL_SHARE, ORDER_SHARE, TICKET_SHARE = 0.88, 0.08, 0.03, 0.005
WEB_EVENTS = ["page_view"] * 14 + ["product_view"] * 4 + ["add_to_cart", "checkout_started"]
EMAIL_EVENTS = ["processed", "delivered", "delivered", "open", "open", "click", "bounce"] * 10 + [
    "unsubscribe",
    "spamreport",
]
ORDER_STATUSES = ["completed"] * 17 + ["refunded", "cancelled", "cancelled"]
CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP"]
TICKET_STATUSES = ["solved"] * 8 + ["open", "pending"]
CHUNK = 20_000


@dataclass(frozen=True)
class Interval:
    """Touchpoints of one delivery: `new` ones in [start, end), `late` ones before start."""

    name: str
    start: datetime
    end: datetime
    touchpoints: int
    late_share: float = 0.0
    late_days: int = 10


@dataclass(frozen=True)
class Population:
    """People 0..size-1 (a multiple of 5): person i has anonymous ids, maybe a user id and
    an e-mail (3 in 5 people)."""

    size: int

    @classmethod
    def of(cls, people: int) -> Population:
        return cls(max(5, people - people % 5))

    @staticmethod
    def anonymous_id(person: int, device: int) -> str:
        return f"anon-{person:08d}-{device}"

    @staticmethod
    def user_id(person: int) -> str | None:
        return f"usr-{person:08d}" if person % 5 < 2 else None

    @staticmethod
    def email(person: int) -> str | None:
        return f"person{person:08d}@bench.example" if person % 5 < 3 else None


class _Clock:
    """Random moments of an interval (late ones up to late_days before its start), as text."""

    def __init__(self, rng: random.Random, interval: Interval):
        self.rng = rng
        self.interval = interval
        self.seconds = (interval.end - interval.start).total_seconds()

    def moment(self) -> datetime:
        interval = self.interval
        if interval.late_share and self.rng.random() < interval.late_share:
            back = self.rng.random() * interval.late_days * 86400
            return interval.start - timedelta(seconds=back + 1)
        return interval.start + timedelta(seconds=self.rng.random() * self.seconds)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_lines(path: Path, lines, opening: str = "", closing: str = "") -> None:
    """Write lines in chunks so memory stays flat whatever the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(opening)
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= CHUNK:
                handle.write("".join(buffer))
                buffer.clear()
        handle.write("".join(buffer))
        handle.write(closing)


def _web_lines(rng: random.Random, clock: _Clock, people: Population, count: int, tag: str):
    for number in range(count):
        person = int(rng.random() * people.size)
        user_id = people.user_id(person) if rng.random() < 0.2 else None
        email = people.email(person) if rng.random() < 0.05 else None
        event = WEB_EVENTS[int(rng.random() * len(WEB_EVENTS))]
        device = 1 if person % 4 == 0 and rng.random() < 0.3 else 0
        anonymous_id = people.anonymous_id(person, device)
        yield (
            f'{{"event_id":"w-{tag}-{number}","anonymous_id":"{anonymous_id}",'
            f'"user_id":{_json_text(user_id)},"email":{_json_text(email)},"event":"{event}",'
            f'"url":"https://shop.example.com/p/{person % 997}","device":"desktop",'
            f'"ts":"{_iso(clock.moment())}"}}\n'
        )


def _json_text(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _email_person(rng: random.Random, people: Population) -> int:
    """A random person with an e-mail address."""
    person = int(rng.random() * people.size)
    return person - person % 5 + int(rng.random() * 3)


def _order_lines(rng, clock, people: Population, count: int, tag: str):
    yield "order_id,customer_email,amount,currency,status,ts\n"
    for number in range(count):
        email = people.email(_email_person(rng, people))
        status = ORDER_STATUSES[int(rng.random() * len(ORDER_STATUSES))]
        currency = CURRENCIES[int(rng.random() * len(CURRENCIES))]
        amount = f"{10 + rng.random() * 190:.2f}"
        yield f"ORD-{tag}-{number},{email},{amount},{currency},{status},{_iso(clock.moment())}\n"


def _ticket_lines(rng, clock, people: Population, count: int, tag: str):
    for number in range(count):
        email = people.email(_email_person(rng, people))
        status = TICKET_STATUSES[int(rng.random() * len(TICKET_STATUSES))]
        opened = clock.moment()
        solved = _json_text(_iso(opened + timedelta(hours=1 + rng.random() * 48)))
        separator = "," if number else ""
        yield (
            f'{separator}\n{{"ticket_id":"T-{tag}-{number}","requester_email":"{email}",'
            f'"status":"{status}","channel":"email","subject":"Question",'
            f'"opened_at":"{_iso(opened)}","solved_at":{solved if status == "solved" else "null"}}}'
        )


def _email_event_lines(rng, clock, people: Population, count: int, tag: str):
    for number in range(count):
        email = people.email(_email_person(rng, people))
        event = EMAIL_EVENTS[int(rng.random() * len(EMAIL_EVENTS))]
        separator = "," if number else ""
        yield (
            f'{separator}\n{{"sg_event_id":"sg-{tag}-{number}","sg_message_id":"m-{tag}-{number}",'
            f'"email":"{email}","event":"{event}","timestamp":{int(clock.moment().timestamp())},'
            f'"campaign_id":"bench","send_id":null}}'
        )


def _crm_lines(rng, clock, people: Population, first: int, last: int, tag: str):
    """CRM contacts of every third person in [first, last); each delivery has its own crm ids
    (a file source appends, so a repeated id would be a duplicate key)."""
    yield "crm_id,user_id,email,phone,first_name,country,email_consent,updated_at\n"
    for person in range(first, last, 3):
        user_id = people.user_id(person) or ""
        email = people.email(person) or ""
        consent = "true" if person % 2 else "false"
        yield (
            f"CRM-{tag}-{person:08d},{user_id},{email},+1 212{person:07d},Sam,US,{consent},"
            f"{_iso(clock.moment())}\n"
        )


def write_interval(data_dir: Path, interval: Interval, people: Population, seed: int) -> dict:
    """Write one delivery's file per source; returns the touchpoints and records per source."""
    rng = random.Random(f"{seed}:{interval.name}")
    clock = _Clock(rng, interval)
    total = interval.touchpoints
    counts = {
        "web_events": int(total * WEB_SHARE),
        "email_events": int(total * EMAIL_SHARE),
        "orders": int(total * ORDER_SHARE),
        "support_tickets": int(total * TICKET_SHARE),
    }
    tag = interval.name
    _write_lines(
        data_dir / "web_events" / f"{tag}.jsonl",
        _web_lines(rng, clock, people, counts["web_events"], tag),
    )
    _write_lines(
        data_dir / "orders" / f"{tag}.csv", _order_lines(rng, clock, people, counts["orders"], tag)
    )
    _write_lines(
        data_dir / "support_tickets" / f"{tag}.json",
        _ticket_lines(rng, clock, people, counts["support_tickets"], tag),
        "[",
        "\n]\n",
    )
    _write_lines(
        data_dir / "email_events" / f"{tag}.json",
        _email_event_lines(rng, clock, people, counts["email_events"], tag),
        "[",
        "\n]\n",
    )
    crm_people = (0, people.size if interval.late_share == 0 else people.size // 100)
    _write_lines(
        data_dir / "crm_contacts" / f"{tag}.csv", _crm_lines(rng, clock, people, *crm_people, tag)
    )
    return counts


def default_intervals(touchpoints: int, end: datetime, days: int = 120) -> list[Interval]:
    """The full history (days before end) and a next day with 1 % more, 10 % of it late."""
    history = Interval("history", end - timedelta(days=days), end, touchpoints)
    increment = Interval(
        "increment", end, end + timedelta(days=1), max(1, touchpoints // 100), late_share=0.1
    )
    return [history, increment]


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)
