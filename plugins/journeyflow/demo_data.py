"""Deterministic, seeded generator of demo touchpoint files in the formats sources.yml describes."""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TextIO

SOURCES = ("web_events", "orders", "support_tickets", "crm_contacts", "email_events")
SOURCE_FILES = {
    "web_events": "web_events/web_events.jsonl",
    "orders": "orders/orders.csv",
    "support_tickets": "support_tickets/support_tickets.json",
    "crm_contacts": "crm_contacts/crm_contacts.csv",
    "email_events": "email_events/email_events.json",
}
ORDER_COLUMNS = ("order_id", "customer_email", "amount", "currency", "status", "ts")
CRM_COLUMNS = (
    "crm_id",
    "user_id",
    "email",
    "phone",
    "first_name",
    "country",
    "email_consent",
    "updated_at",
)
MIN_DAYS = 30
LATEST_VISIT = 0.5  # no visit starts in the last 12 h, so every session ends before end_date
VISIT_GAP = timedelta(minutes=30)
BAD_TIMESTAMP = "not-a-date"

FIRST_NAMES = (
    "Alice", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jonas",
    "Katie", "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Samir", "Tara",
    "Umar", "Vera", "William", "Xenia", "Yusuf", "Zoe", "Amir", "Bianca", "Carlos", "Dana",
    "Elif", "Farah", "Georg", "Hana", "Ivan", "Julia", "Kenji", "Lena", "Marco", "Nina",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Garcia", "Miller", "Brown", "Davis", "Martin", "Wilson", "Moore", "Taylor",
    "Anderson", "Thomas", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "King",
    "Wright", "Lopez", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Perez",
    "Schmidt", "Muller", "Weber", "Dubois", "Laurent", "Rossi", "Novak", "Sato", "Kim", "Nguyen",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "inbox.example")
# country -> (weight, international calling code, order currency)
COUNTRIES = {
    "US": (55, "1", "USD"),
    "GB": (15, "44", "GBP"),
    "DE": (12, "49", "EUR"),
    "FR": (10, "33", "EUR"),
    "CA": (8, "1", "CAD"),
}
US_AREA_CODES = ("212", "206", "303", "305", "312", "404", "415", "512", "617", "646", "702")
CA_AREA_CODES = ("416", "514", "604", "613", "403")
DEVICE_WEIGHTS = {"desktop": 45, "mobile": 35, "tablet": 6, "ios_app": 8, "android_app": 6}
JOURNEY_WEIGHTS = {
    "awareness": 20,
    "consideration": 12,
    "stalled": 15,
    "one_time": 20,
    "retained": 18,
    "lapsed": 15,
}
ACCOUNT_RATE = {
    "awareness": 0.0,
    "consideration": 0.4,
    "stalled": 0.65,
    "one_time": 0.92,
    "retained": 0.92,
    "lapsed": 0.92,
}
SITE = "https://shop.example.com"
PAGES = (
    "/", "/collections/new", "/collections/sale", "/collections/outdoor", "/collections/home",
    "/blog/autumn-layering", "/blog/care-guide", "/about", "/help/shipping", "/help/returns",
)  # fmt: skip
CAMPAIGN_QUERIES = (
    "utm_source=google&utm_medium=cpc&utm_campaign=autumn_search",
    "utm_source=facebook&utm_medium=paid_social&utm_campaign=autumn_prospecting",
    "utm_source=instagram&utm_medium=social&utm_campaign=new_arrivals",
    "utm_source=newsletter&utm_medium=email&utm_campaign=newsletter",
    "utm_source=partner_blog&utm_medium=referral&utm_campaign=gift_guide",
)
# product slug -> price in cents
PRODUCTS = {
    "merino-crew-sweater": 8950, "linen-shirt": 5495, "rain-shell-jacket": 14900,
    "trail-runner-shoes": 11995, "canvas-tote": 2450, "wool-beanie": 2295,
    "down-vest": 12900, "chino-trousers": 6995, "organic-tee": 2950, "leather-belt": 3995,
    "ceramic-mug-set": 3450, "cotton-throw": 7900, "travel-backpack": 9995,
    "silk-scarf": 4950, "hiking-socks-3pack": 1995, "denim-jacket": 10900,
}  # fmt: skip
TICKET_SUBJECTS = {
    "completed": ("Where is my order {order_id}?", "Wrong size received in {order_id}",
                  "Change delivery address for {order_id}", "Item damaged in {order_id}"),
    "refunded": ("Refund request for order {order_id}", "Return label for {order_id}"),
    "cancelled": ("Why was order {order_id} cancelled?", "Payment failed for {order_id}"),
    "pre_sale": ("Question about sizing", "Do you ship to my country?",
                 "Discount code not working", "Is this item back in stock soon?"),
}  # fmt: skip
TICKET_CHANNELS = {"email": 50, "chat": 35, "phone": 15}
NEWSLETTER_DAY = 6
NEWSLETTER_HOUR = 9


class Visit(NamedTuple):
    """One planned browsing session: when (days after the window start), what, and any order."""

    day: float
    kind: str  # browse | consider | purchase
    order_status: str | None = None


@dataclass(frozen=True)
class Window:
    """The simulated period [start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start) / timedelta(days=1)

    def at(self, day: float) -> datetime:
        return (self.start + timedelta(days=day)).replace(microsecond=0)


@dataclass
class Device:
    """A browser or app install; user_id is set once the person signs up or logs in on it."""

    kind: str
    anonymous_id: str
    user_id: str | None = None


@dataclass
class Person:
    """A simulated customer and the ground truth behind their touchpoints."""

    index: int
    first_name: str
    email: str
    country: str
    phone: tuple[str, ...]
    journey: str
    devices: list[Device]
    user_id: str | None
    consent: bool
    signed_up_at: datetime | None = None
    consider_times: list[datetime] = field(default_factory=list)


@dataclass
class DemoData:
    """All well-formed records per source, in file order."""

    web_events: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    support_tickets: list[dict[str, Any]]
    crm_contacts: list[dict[str, Any]]
    email_events: list[dict[str, Any]]


def generate_demo_data(
    out_dir: Path,
    customers: int = 5000,
    seed: int = 42,
    end_date: date = date(2026, 11, 1),
    days: int = 120,
    malformed_rate: float = 0.002,
) -> dict[str, int]:
    """Write every source's demo file under out_dir and return the records written per source.

    Counts include malformed records. Each source with any records gets
    max(1, round(records * malformed_rate)) malformed ones when malformed_rate > 0;
    `count_malformed(out_dir)` reads those numbers back from manifest.json.
    """
    _validate_arguments(customers, days, malformed_rate)
    window = _window(end_date, days)
    people = make_people(_rng(seed, "people"), customers)
    data = simulate(seed, people, window)
    malformed = _corrupt(data, seed, malformed_rate)
    out_dir = Path(out_dir)
    counts = write_sources(out_dir, data, malformed)
    _write_manifest(out_dir, counts, malformed, people, seed, end_date, days, malformed_rate)
    return counts


def count_malformed(out_dir: Path) -> dict[str, int]:
    """Return the malformed records per source recorded in out_dir/manifest.json."""
    manifest = json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
    return dict(manifest["malformed"])


def _validate_arguments(customers: int, days: int, malformed_rate: float) -> None:
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS}")
    if not 0.0 <= malformed_rate <= 0.5:
        raise ValueError("malformed_rate must be between 0 and 0.5")


def _window(end_date: date, days: int) -> Window:
    end = datetime.combine(end_date, time(0), tzinfo=UTC)
    return Window(start=end - timedelta(days=days), end=end)


def _rng(seed: int, stream: str) -> random.Random:
    """An independent generator per stream, so one source's logic never shifts another's."""
    return random.Random(f"{seed}:{stream}")


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(4 * length):0{length}x}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- people -----------------------------------------------------------------------------


def make_people(rng: random.Random, customers: int) -> list[Person]:
    """Create the simulated customers with unique emails, phones and identifiers."""
    emails: set[str] = set()
    phones: set[tuple[str, ...]] = set()
    return [_make_person(rng, index, emails, phones) for index in range(customers)]


def _make_person(
    rng: random.Random, index: int, emails: set[str], phones: set[tuple[str, ...]]
) -> Person:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    country = rng.choices(tuple(COUNTRIES), weights=[c[0] for c in COUNTRIES.values()])[0]
    journey = _weighted(rng, JOURNEY_WEIGHTS)
    has_account = rng.random() < ACCOUNT_RATE[journey]
    return Person(
        index=index,
        first_name=first,
        email=_unique_email(rng, first, last, emails),
        country=country,
        phone=_unique_phone(rng, country, phones),
        journey=journey,
        devices=_make_devices(rng, journey),
        user_id=f"usr_{_hex(rng, 12)}" if has_account else None,
        consent=rng.random() < 0.8,
    )


def _unique_email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    first, last = first.lower(), last.lower()
    local = rng.choice(
        (f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{first}_{last}")
    )
    email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
    while email in taken:
        email = f"{local}{rng.randint(1, 999)}@{rng.choice(EMAIL_DOMAINS)}"
    taken.add(email)
    return email


def _unique_phone(rng: random.Random, country: str, taken: set[tuple[str, ...]]) -> tuple[str, ...]:
    phone = _national_number(rng, country)
    while (country, *phone) in taken:
        phone = _national_number(rng, country)
    taken.add((country, *phone))
    return phone


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _national_number(rng: random.Random, country: str) -> tuple[str, ...]:
    """A national number (no trunk prefix) as the digit groups it is usually written in."""
    if country in ("US", "CA"):
        area = rng.choice(US_AREA_CODES if country == "US" else CA_AREA_CODES)
        return area, str(rng.randint(201, 989)), _digits(rng, 4)
    if country == "GB":
        if rng.random() < 0.5:
            return "20", _digits(rng, 4), _digits(rng, 4)
        return f"7{_digits(rng, 3)}", _digits(rng, 6)
    if country == "DE":
        return rng.choice(("30", "40", "89", "151", "171")), _digits(rng, 8)
    return rng.choice(("1", "6", "7")), *(_digits(rng, 2) for _ in range(4))


def format_phone(rng: random.Random, country: str, groups: tuple[str, ...]) -> str:
    """Write a phone number the way a person or a form might, in one of several styles."""
    code = COUNTRIES[country][1]
    digits = "".join(groups)
    spaced = " ".join(groups)
    if code == "1":
        area, exchange, line = groups
        styles = (
            f"+1 {area} {exchange} {line}",
            f"({area}) {exchange}-{line}",
            f"{area}.{exchange}.{line}",
            f"1{digits}",
            f"{area}-{exchange}-{line}",
        )
    else:
        styles = (f"+{code} {spaced}", f"0{spaced}", f"+{code}{digits}", f"00{code} {spaced}")
    return rng.choice(styles)


def _make_devices(rng: random.Random, journey: str) -> list[Device]:
    first = _weighted(rng, DEVICE_WEIGHTS)
    devices = [Device(first, _uuid(rng))]
    if rng.random() < (0.05 if journey == "awareness" else 0.3):
        others = {kind: w for kind, w in DEVICE_WEIGHTS.items() if kind != first}
        devices.append(Device(_weighted(rng, others), _uuid(rng)))
    return devices


def typed_email(rng: random.Random, email: str, variant_rate: float) -> str:
    """The address as a person types it: usually canonical, sometimes re-cased or padded."""
    if rng.random() >= variant_rate:
        return email
    style = rng.randrange(4)
    if style == 0:
        return _title_email(email)
    if style == 1:
        return f" {_title_email(email)} "
    if style == 2:
        return email.upper()
    return f"{email} "


def _title_email(email: str) -> str:
    return re.sub(r"(^|[._@])([a-z])", lambda m: m.group(1) + m.group(2).upper(), email)


# --- journeys ---------------------------------------------------------------------------


def plan_visits(rng: random.Random, journey: str, days: float) -> list[Visit]:
    """The sessions a person in this journey makes, in time order."""
    planner = {
        "awareness": _plan_awareness,
        "consideration": _plan_consideration,
        "stalled": _plan_stalled,
        "one_time": _plan_one_time,
        "retained": _plan_retained,
        "lapsed": _plan_lapsed,
    }[journey]
    return sorted(planner(rng, days), key=lambda visit: visit.day)


def _latest(days: float) -> float:
    return days - LATEST_VISIT


def _earlier(rng: random.Random, day: float, low: float, high: float) -> float:
    """A day `low`..`high` days before `day`, or any earlier day when that is before the window."""
    candidate = day - rng.uniform(low, high)
    return candidate if candidate >= 0 else rng.uniform(0, day)


def _later_visits(
    rng: random.Random, day: float, days: float, kind: str, count: int, status: str | None = None
) -> list[Visit]:
    """Up to `count` visits 1..30 days after `day`; those past the window never happen."""
    later = (day + rng.uniform(1, 30) for _ in range(count))
    return [Visit(moment, kind, status) for moment in later if moment < _latest(days)]


def _lead_in(rng: random.Random, day: float) -> list[Visit]:
    """Anonymous browsing and product research in the weeks before `day`."""
    visits = [Visit(_earlier(rng, day, 2, 30), "browse") for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.6:
        visits.append(Visit(_earlier(rng, day, 0.2, 4), "consider"))
    return visits


def _plan_awareness(rng: random.Random, days: float) -> list[Visit]:
    return [Visit(rng.uniform(0, _latest(days)), "browse") for _ in range(rng.randint(1, 4))]


def _plan_consideration(rng: random.Random, days: float) -> list[Visit]:
    last = rng.uniform(0, days - 22)
    visits = [*_lead_in(rng, last), Visit(last, "consider")]
    if rng.random() < 0.5:
        visits.append(Visit(_earlier(rng, last, 0.1, 2), "consider"))
    return visits


def _plan_stalled(rng: random.Random, days: float) -> list[Visit]:
    last = days - rng.uniform(3.5, 19.5)
    visits = [*_lead_in(rng, last), Visit(last, "consider")]
    if rng.random() < 0.5:
        visits.append(Visit(_earlier(rng, last, 0.1, 2), "consider"))
    return visits


def _plan_one_time(rng: random.Random, days: float) -> list[Visit]:
    day = rng.uniform(10, days - 1)
    visits = [*_lead_in(rng, day), Visit(day, "purchase", "completed")]
    visits += _later_visits(rng, day, days, "browse", rng.randint(0, 2))
    if rng.random() < 0.15:
        status = rng.choice(("refunded", "cancelled"))
        visits.append(Visit(rng.uniform(0, _latest(days)), "purchase", status))
    return visits


def _plan_retained(rng: random.Random, days: float) -> list[Visit]:
    first = rng.uniform(3, max(4.0, days - 62))
    second = min(first + rng.uniform(7, 55), _latest(days))
    visits = [*_lead_in(rng, first), Visit(first, "purchase", "completed")]
    if rng.random() < 0.5:
        visits.append(Visit(second - rng.uniform(0.5, 5), "consider"))
    visits.append(Visit(second, "purchase", "completed"))
    if rng.random() < 0.35:
        visits += _later_visits(rng, second + 10, days, "purchase", 1, "completed")
    return visits + _later_visits(rng, second, days, "browse", rng.randint(0, 2))


def _plan_lapsed(rng: random.Random, days: float) -> list[Visit]:
    day = rng.uniform(3, max(4.0, days - 75))
    visits = [*_lead_in(rng, day), Visit(day, "purchase", "completed")]
    if rng.random() < 0.3:
        visits.append(Visit(day + rng.uniform(1, 8), "browse"))
    return visits


def _page_url(rng: random.Random, first_in_visit: bool) -> str:
    url = SITE + rng.choice(PAGES)
    if first_in_visit and rng.random() < 0.35:
        url += "?" + rng.choice(CAMPAIGN_QUERIES)
    return url


def _product_url(rng: random.Random) -> str:
    return f"{SITE}/products/{rng.choice(tuple(PRODUCTS))}"


def visit_steps(rng: random.Random, kind: str) -> list[tuple[str, str]]:
    """The (event, url) clicks of one session before any signup or login is added."""
    pages = {"browse": (2, 6), "consider": (1, 3), "purchase": (1, 3)}[kind]
    steps = [("page_view", _page_url(rng, i == 0)) for i in range(rng.randint(*pages))]
    if kind == "browse":
        return steps
    views = rng.randint(2, 5) if kind == "consider" else rng.randint(1, 4)
    steps += [("product_view", _product_url(rng)) for _ in range(views)]
    if kind == "purchase" or rng.random() < 0.5:
        steps.append(("add_to_cart", steps[-1][1]))
        if kind == "purchase" or rng.random() < 0.15:
            steps.append(("checkout_started", f"{SITE}/checkout"))
    return steps


def _identify_position(rng: random.Random, steps: list[tuple[str, str]]) -> int:
    """Where a signup or login fits: before checkout, else after at least one anonymous click."""
    for position, (event, _) in enumerate(steps):
        if event == "checkout_started":
            return position
    return rng.randint(1, len(steps))


def _with_identification(
    rng: random.Random, person: Person, device: Device, visit: Visit, is_signup: bool
) -> list[tuple[str, str]]:
    steps = visit_steps(rng, visit.kind)
    if is_signup:
        steps.insert(_identify_position(rng, steps), ("signup", f"{SITE}/account/signup"))
    elif person.signed_up_at and device.user_id is None:
        if visit.kind == "purchase" or rng.random() < 0.6:
            steps.insert(_identify_position(rng, steps), ("login", f"{SITE}/account/login"))
    return steps


def _signup_visit(rng: random.Random, person: Person, visits: list[Visit]) -> int | None:
    """Index of the visit in which the person creates their account, if they ever do."""
    if person.user_id is None:
        return None
    purchases = [i for i, visit in enumerate(visits) if visit.kind == "purchase"]
    research = [i for i, visit in enumerate(visits) if visit.kind in ("consider", "purchase")]
    if purchases and rng.random() < 0.6:
        return purchases[0]
    return research[0]


def _order_amount(rng: random.Random) -> str:
    cents = sum(rng.choice(tuple(PRODUCTS.values())) for _ in range(rng.randint(1, 3)))
    return f"{cents // 100}.{cents % 100:02d}"


def simulate_person(
    rng: random.Random, person: Person, window: Window
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Render one person's planned visits into web events and (id-less) orders."""
    visits = plan_visits(rng, person.journey, window.days)
    signup_index = _signup_visit(rng, person, visits)
    events: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    cursor = window.start - VISIT_GAP
    for index, visit in enumerate(visits):
        device = person.devices[0 if index == 0 or rng.random() < 0.6 else -1]
        moment = max(window.at(visit.day), cursor + VISIT_GAP)
        steps = _with_identification(rng, person, device, visit, index == signup_index)
        for event, url in steps:
            moment += timedelta(seconds=rng.randint(8, 150))
            events.append(_web_event(rng, person, device, event, url, moment))
        if visit.kind == "consider":
            person.consider_times.append(moment)
        if visit.order_status:
            moment += timedelta(seconds=rng.randint(20, 300))
            orders.append(_order(rng, person, visit.order_status, moment))
        cursor = moment
    return events, orders


def _web_event(
    rng: random.Random, person: Person, device: Device, event: str, url: str, moment: datetime
) -> dict[str, Any]:
    email = None
    if event in ("signup", "login"):
        device.user_id = person.user_id
        email = typed_email(rng, person.email, 0.2)
        if event == "signup":
            person.signed_up_at = moment
    return {
        "event_id": _uuid(rng),
        "anonymous_id": device.anonymous_id,
        "user_id": device.user_id,
        "email": email,
        "event": event,
        "url": url,
        "device": device.kind,
        "ts": _iso(moment),
    }


def _order(rng: random.Random, person: Person, status: str, moment: datetime) -> dict[str, Any]:
    return {
        "order_id": None,
        "customer_email": typed_email(rng, person.email, 0.3),
        "amount": _order_amount(rng),
        "currency": COUNTRIES[person.country][2],
        "status": status,
        "ts": moment,
        "person": person,
    }


def simulate(seed: int, people: list[Person], window: Window) -> DemoData:
    """Simulate every source from the people's journeys."""
    rng = _rng(seed, "journeys")
    events: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    for person in people:
        person_events, person_orders = simulate_person(rng, person, window)
        events += person_events
        drafts += person_orders
    events.sort(key=lambda event: event["ts"])
    drafts.sort(key=lambda order: order["ts"])
    for number, order in enumerate(drafts, start=1):
        order["order_id"] = f"ORD-{number:07d}"
    crm_rows, contacts = make_crm_contacts(_rng(seed, "crm_contacts"), people, window)
    return DemoData(
        web_events=events,
        orders=[_order_row(order) for order in drafts],
        support_tickets=make_tickets(_rng(seed, "support_tickets"), people, drafts, window),
        crm_contacts=crm_rows,
        email_events=make_email_events(_rng(seed, "email_events"), contacts, window),
    )


def _order_row(order: dict[str, Any]) -> dict[str, Any]:
    return {column: order[column] for column in ORDER_COLUMNS} | {"ts": _iso(order["ts"])}


# --- support tickets --------------------------------------------------------------------


def make_tickets(
    rng: random.Random, people: list[Person], orders: list[dict[str, Any]], window: Window
) -> list[dict[str, Any]]:
    """Tickets opened around orders (mostly refunds and delivery questions) and pre-sale ones."""
    ticket_rate = {"completed": 0.1, "refunded": 0.6, "cancelled": 0.3}
    drafts = []
    for order in orders:
        if rng.random() < ticket_rate[order["status"]]:
            opened = order["ts"] + timedelta(days=rng.uniform(0.05, 10))
            subject = rng.choice(TICKET_SUBJECTS[order["status"]]).format(**order)
            drafts.append(_ticket(rng, order["person"], subject, opened, window))
    for person in people:
        if person.consider_times and rng.random() < 0.06:
            opened = person.consider_times[-1] + timedelta(hours=rng.uniform(0.1, 20))
            subject = rng.choice(TICKET_SUBJECTS["pre_sale"])
            drafts.append(_ticket(rng, person, subject, opened, window))
    tickets = sorted((t for t in drafts if t["opened_at"] < _iso(window.end)), key=_opened)
    for number, ticket in enumerate(tickets, start=100001):
        ticket["ticket_id"] = f"T-{number}"
    return tickets


def _opened(ticket: dict[str, Any]) -> str:
    return ticket["opened_at"]


def _ticket(
    rng: random.Random, person: Person, subject: str, opened: datetime, window: Window
) -> dict[str, Any]:
    opened = opened.replace(microsecond=0)
    solved = opened + timedelta(days=rng.uniform(0.02, 5)) if rng.random() < 0.85 else None
    if solved is not None and solved >= window.end:
        solved = None
    status = "solved" if solved else rng.choice(("open", "pending"))
    return {
        "ticket_id": None,
        "requester_email": typed_email(rng, person.email, 0.3),
        "status": status,
        "channel": _weighted(rng, TICKET_CHANNELS),
        "subject": subject,
        "opened_at": _iso(opened),
        "solved_at": _iso(solved) if solved else None,
    }


# --- CRM --------------------------------------------------------------------------------


def _crm_rate(person: Person) -> float:
    if person.user_id:
        return 0.92
    return 0.6 if person.journey in ("one_time", "retained", "lapsed") else 0.18


def make_crm_contacts(
    rng: random.Random, people: list[Person], window: Window
) -> tuple[list[dict[str, Any]], list[Person]]:
    """CRM rows (most account holders, some guests and leads, a few duplicates) and their people."""
    contacts = [person for person in people if rng.random() < _crm_rate(person)]
    rows = [_crm_row(rng, person, window, link_user=rng.random() < 0.9) for person in contacts]
    rows += [
        _crm_row(rng, person, window, link_user=False, variant_rate=0.7)
        for person in contacts
        if rng.random() < 0.06
    ]
    for number, row in enumerate(rows, start=1):
        row["crm_id"] = f"CRM-{number:06d}"
    return rows, contacts


def _crm_row(
    rng: random.Random,
    person: Person,
    window: Window,
    link_user: bool,
    variant_rate: float = 0.15,
) -> dict[str, Any]:
    known_from = person.signed_up_at or window.start
    span = (window.end - known_from).total_seconds() - 1
    updated = known_from + timedelta(seconds=rng.uniform(0, span))
    phone = format_phone(rng, person.country, person.phone) if rng.random() < 0.85 else ""
    return {
        "crm_id": None,
        "user_id": person.user_id if link_user and person.user_id else "",
        "email": typed_email(rng, person.email, variant_rate),
        "phone": phone,
        "first_name": person.first_name,
        "country": person.country,
        "email_consent": "true" if person.consent else "false",
        "updated_at": _iso(updated.replace(microsecond=0)),
    }


# --- email events -----------------------------------------------------------------------


def newsletter_sends(window: Window) -> list[tuple[str, datetime]]:
    """(campaign_id, send time) of the monthly newsletters inside the window."""
    sends = []
    month = window.start.replace(day=1, hour=0, minute=0, second=0)
    while month < window.end:
        sent = month.replace(day=NEWSLETTER_DAY, hour=NEWSLETTER_HOUR)
        if window.start <= sent < window.end - timedelta(days=1):
            sends.append((f"newsletter_{sent.year}_{sent.month:02d}", sent))
        month = (month + timedelta(days=32)).replace(day=1)
    return sends


def make_email_events(
    rng: random.Random, contacts: list[Person], window: Window
) -> list[dict[str, Any]]:
    """SendGrid webhook events for earlier newsletters sent to consenting CRM contacts."""
    audience = [person for person in contacts if person.consent]
    suppressed: set[int] = set()
    events: list[dict[str, Any]] = []
    for campaign_id, sent in newsletter_sends(window):
        for person in audience:
            known_from = person.signed_up_at or window.start
            if person.index in suppressed or known_from > sent:
                continue
            message = _message_events(rng, person, campaign_id, sent)
            if message[-1]["event"] in ("bounce", "dropped", "unsubscribe", "spamreport"):
                suppressed.add(person.index)
            events += [e for e in message if e["timestamp"] < window.end.timestamp()]
    events.sort(key=lambda event: event["timestamp"])
    return events


def _message_events(
    rng: random.Random, person: Person, campaign_id: str, sent: datetime
) -> list[dict[str, Any]]:
    """The webhook events of one message, in order; the last one decides suppression."""
    message_id = f"{_token(rng, 22)}.filterdrecv-{rng.randint(100, 999)}-{_hex(rng, 6)}-1-0.0"
    send_id = _uuid(rng)
    start = sent + timedelta(seconds=rng.randint(0, 900))
    timeline = [("processed", start)] + _delivery(rng, start)
    return [
        {
            "sg_event_id": _token(rng, 22),
            "sg_message_id": message_id,
            "email": person.email,
            "event": event,
            "timestamp": int(moment.timestamp()),
            "campaign_id": campaign_id,
            "send_id": send_id,
        }
        for event, moment in timeline
    ]


def _delivery(rng: random.Random, start: datetime) -> list[tuple[str, datetime]]:
    outcome = rng.random()
    if outcome < 0.005:
        return [("dropped", start + timedelta(seconds=1))]
    if outcome < 0.035:
        return [("bounce", start + timedelta(seconds=rng.randint(2, 120)))]
    timeline = []
    if rng.random() < 0.03:
        start += timedelta(seconds=rng.randint(30, 600))
        timeline.append(("deferred", start))
    delivered = start + timedelta(seconds=rng.randint(2, 1800))
    return timeline + [("delivered", delivered)] + _engagement(rng, delivered)


def _engagement(rng: random.Random, delivered: datetime) -> list[tuple[str, datetime]]:
    if rng.random() < 0.002:
        return [("spamreport", delivered + timedelta(hours=rng.uniform(0.1, 48)))]
    if rng.random() >= 0.38:
        return []
    opened = delivered + timedelta(hours=rng.uniform(0.05, 72))
    timeline = [("open", opened)]
    if rng.random() < 0.3:
        timeline.append(("click", opened + timedelta(seconds=rng.randint(5, 600))))
    if rng.random() < 0.04:
        timeline.append(("unsubscribe", opened + timedelta(seconds=rng.randint(620, 900))))
    return timeline


TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(TOKEN_ALPHABET, k=length))


# --- malformed records --------------------------------------------------------------------


def malformed_positions(rng: random.Random, total: int, rate: float) -> list[int]:
    """Which records of a source to corrupt: max(1, round(total * rate)) of them when rate > 0."""
    if rate <= 0 or total == 0:
        return []
    count = min(total, max(1, round(total * rate)))
    return sorted(rng.sample(range(total), count))


def _corrupt(data: DemoData, seed: int, rate: float) -> dict[str, list[int]]:
    """Damage records in place (except truncation, applied when writing); return positions."""
    positions = {
        source: malformed_positions(_rng(seed, f"malformed:{source}"), len(rows), rate)
        for source, rows in vars(data).items()
    }
    for source, field_name, bad in (
        ("orders", "amount", "n/a"),
        ("crm_contacts", "updated_at", ""),
        ("support_tickets", "opened_at", BAD_TIMESTAMP),
        ("email_events", "timestamp", BAD_TIMESTAMP),
    ):
        for position in positions[source]:
            getattr(data, source)[position][field_name] = bad
    for position in positions["web_events"][1::2]:
        data.web_events[position]["ts"] = BAD_TIMESTAMP
    return positions


# --- writing ------------------------------------------------------------------------------


def write_sources(out_dir: Path, data: DemoData, malformed: dict[str, list[int]]) -> dict[str, int]:
    """Write each source's file; every other malformed web event is a truncated line."""
    truncated = set(malformed["web_events"][0::2])
    _write_jsonl(out_dir / SOURCE_FILES["web_events"], data.web_events, truncated)
    _write_csv(out_dir / SOURCE_FILES["orders"], ORDER_COLUMNS, data.orders)
    _write_json_array(out_dir / SOURCE_FILES["support_tickets"], data.support_tickets)
    _write_csv(out_dir / SOURCE_FILES["crm_contacts"], CRM_COLUMNS, data.crm_contacts)
    _write_json_array(out_dir / SOURCE_FILES["email_events"], data.email_events)
    return {source: len(getattr(data, source)) for source in SOURCES}


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _open_for_write(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8", newline="\n")


def _write_jsonl(path: Path, records: list[dict[str, Any]], truncated: set[int]) -> None:
    with _open_for_write(path) as handle:
        for position, record in enumerate(records):
            line = _dump(record)
            handle.write((line[: len(line) // 2] if position in truncated else line) + "\n")


def _write_json_array(path: Path, records: list[dict[str, Any]]) -> None:
    with _open_for_write(path) as handle:
        handle.write("[\n" + ",\n".join(_dump(record) for record in records) + "\n]\n")


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with _open_for_write(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_manifest(
    out_dir: Path,
    counts: dict[str, int],
    malformed: dict[str, list[int]],
    people: list[Person],
    seed: int,
    end_date: date,
    days: int,
    malformed_rate: float,
) -> None:
    journeys = {name: 0 for name in JOURNEY_WEIGHTS}
    for person in people:
        journeys[person.journey] += 1
    manifest = {
        "seed": seed,
        "customers": len(people),
        "end_date": end_date.isoformat(),
        "days": days,
        "malformed_rate": malformed_rate,
        "rows": counts,
        "malformed": {source: len(malformed[source]) for source in SOURCES},
        "journeys": journeys,
        "files": SOURCE_FILES,
    }
    with _open_for_write(out_dir / "manifest.json") as handle:
        handle.write(json.dumps(manifest, indent=2) + "\n")


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Generate the demo files from the command line and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--malformed-rate", type=float, default=0.002)
    args = parser.parse_args(argv)
    counts = generate_demo_data(
        args.out, args.customers, args.seed, args.end_date, args.days, args.malformed_rate
    )
    malformed = count_malformed(args.out)
    for source, rows in counts.items():
        print(f"{source:16} {rows:8d} rows  ({malformed[source]} malformed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
