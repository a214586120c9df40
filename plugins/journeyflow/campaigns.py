"""Campaign declarations: parse and validate the campaigns YAML file (errors name file and key)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from journeyflow.stages import journey_stages

TRIGGER_KINDS = ("entered_stage", "stalled_in_stage", "abandoned", "sql")
ENTRY_LIMITS = ("after_exit", "once", "every_days")
GLOBAL_CONTROL = "_global_control"  # assignment scope of the global control group
ALL_VARIANTS = "all"  # variant name the performance report uses for the whole campaign
CAMPAIGN_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class CampaignConfigError(ValueError):
    """The campaigns file is invalid; the message names the file and key of the problem."""


@dataclass(frozen=True)
class Trigger:
    """Who enters the campaign, and what one "trigger window" (one message at most) is."""

    kind: str
    stage: str | None = None
    days: int = 0  # stalled_in_stage: days in the stage
    within_days: int = 1  # entered_stage / abandoned: how far back an event may be
    steps: tuple[str, ...] = ()  # abandoned: touchpoint types that start the step
    without: tuple[str, ...] = ()  # abandoned: touchpoint types that complete it
    after_hours: int = 0  # abandoned: hours without completion before it counts
    predicate: str | None = None  # sql: boolean SQL over dim_customers columns


@dataclass(frozen=True)
class EntryLimit:
    """How often one person may enter: per trigger window, once ever, or every N days."""

    kind: str = "after_exit"
    days: int = 0

    def describe(self) -> str:
        return f"every_{self.days}_days" if self.kind == "every_days" else self.kind


@dataclass(frozen=True)
class Variant:
    name: str
    template_id: str
    percent: float


@dataclass(frozen=True)
class Goal:
    """The journey goal a message should lead to, and how long after it a conversion counts."""

    touchpoint: str = "order_completed"
    within_days: int = 7


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    trigger: Trigger
    variants: tuple[Variant, ...]
    template_data: tuple[tuple[str, str], ...] = ()  # (template key, audience column)
    entry_limit: EntryLimit = EntryLimit()
    holdout_percent: float = 0.0
    priority: int = 100  # 1 is the highest; ties go to the campaign id
    marketing: bool = True
    goal: Goal = Goal()
    from_email: str | None = None
    description: str = ""
    origin: str = ""  # "<file>: campaigns.<id>", for errors found while running


@dataclass(frozen=True)
class FrequencyCap:
    max_messages: int
    per_days: int


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time


@dataclass(frozen=True)
class Policy:
    """Rules across campaigns."""

    global_control_percent: float = 0.0
    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None
    default_time_zone: str = "UTC"
    max_send_delay_hours: int = 48


@dataclass(frozen=True)
class CampaignConfig:
    policy: Policy
    campaigns: tuple[Campaign, ...] = field(default_factory=tuple)  # in priority order


# --- small typed readers; `where` is the dotted key path used in error messages ---------------


def _fail(where: str, message: str) -> CampaignConfigError:
    return CampaignConfigError(f"{where}: {message}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "expected a mapping")
    return value


def _known_keys(body: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", f"unknown key; expected one of {list(allowed)}")


def _required(body: dict[str, Any], key: str, where: str) -> Any:
    if body.get(key) in (None, ""):
        raise _fail(f"{where}.{key}", "required field is missing")
    return body[key]


def _integer(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _percent(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 100:
        raise _fail(where, f"must be a number of percent in [0, 100), got {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _names(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail(where, "must be a name or a non-empty list of names")
    return tuple(_identifier(item, f"{where}[{i}]") for i, item in enumerate(items))


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise _fail(where, f"must be a lower-case name like order_completed, got {value!r}")
    return value


def _clock(value: Any, where: str) -> time:
    if not isinstance(value, str) or not CLOCK_TIME.match(value):
        raise _fail(where, f'must be a quoted "HH:MM" time, got {value!r}')
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _time_zone(value: Any, where: str) -> str:
    name = _text(value, where)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(where, f"unknown time zone {name!r}") from None
    return name


def _stage(value: Any, where: str) -> str:
    stages = journey_stages()
    if value not in stages:
        raise _fail(where, f"{value!r} not in {list(stages)}")
    return value


# --- sections ------------------------------------------------------------------------------


def _parse_trigger(body: Any, where: str) -> Trigger:
    body = _mapping(body, where)
    kinds = [kind for kind in TRIGGER_KINDS if kind in body]
    if len(kinds) != 1 or len(body) != 1:
        raise _fail(where, f"needs exactly one of {list(TRIGGER_KINDS)}, got {sorted(body)}")
    kind = kinds[0]
    where = f"{where}.{kind}"
    if kind == "sql":
        predicate = _text(body[kind], where)
        if ";" in predicate:
            raise _fail(where, "must be one boolean expression without ';'")
        return Trigger(kind, predicate=predicate)
    spec = _mapping(body[kind], where)
    if kind == "stalled_in_stage":
        _known_keys(spec, ("stage", "days"), where)
        return Trigger(
            kind,
            stage=_stage(_required(spec, "stage", where), f"{where}.stage"),
            days=_integer(_required(spec, "days", where), f"{where}.days", minimum=1),
        )
    if kind == "entered_stage":
        _known_keys(spec, ("stage", "within_days"), where)
        return Trigger(
            kind,
            stage=_stage(_required(spec, "stage", where), f"{where}.stage"),
            within_days=_integer(spec.get("within_days", 1), f"{where}.within_days", minimum=1),
        )
    _known_keys(spec, ("steps", "without", "after_hours", "within_days"), where)
    return Trigger(
        kind,
        steps=_names(_required(spec, "steps", where), f"{where}.steps"),
        without=_names(spec.get("without", ["order_completed"]), f"{where}.without"),
        after_hours=_integer(_required(spec, "after_hours", where), f"{where}.after_hours", 1),
        within_days=_integer(spec.get("within_days", 3), f"{where}.within_days", minimum=1),
    )


def _parse_entry_limit(value: Any, where: str) -> EntryLimit:
    if value in (None, "after_exit"):
        return EntryLimit("after_exit")
    if value == "once":
        return EntryLimit("once")
    if isinstance(value, dict) and set(value) == {"every_days"}:
        return EntryLimit("every_days", _integer(value["every_days"], f"{where}.every_days", 1))
    raise _fail(where, f"must be after_exit, once or {{every_days: N}}, got {value!r}")


def _parse_content(
    body: Any, where: str
) -> tuple[tuple[Variant, ...], tuple[tuple[str, str], ...]]:
    body = _mapping(body, where)
    _known_keys(body, ("template_id", "variants", "template_data"), where)
    data = _mapping(body.get("template_data") or {}, f"{where}.template_data")
    template_data = tuple(
        (_text(key, f"{where}.template_data"), _identifier(column, f"{where}.template_data.{key}"))
        for key, column in data.items()
    )
    if ("template_id" in body) == ("variants" in body):
        raise _fail(where, "needs either template_id or variants (not both)")
    if "template_id" in body:
        template = _text(body["template_id"], f"{where}.template_id")
        return (Variant("default", template, 100.0),), template_data
    variants_where = f"{where}.variants"
    variants = []
    for name, spec in _mapping(body["variants"], variants_where).items():
        here = f"{variants_where}.{name}"
        if _identifier(name, here) == ALL_VARIANTS:
            raise _fail(here, f"{ALL_VARIANTS!r} is reserved for the whole campaign in reports")
        spec = _mapping(spec, here)
        _known_keys(spec, ("template_id", "percent"), here)
        percent = _required(spec, "percent", here)
        if isinstance(percent, bool) or not isinstance(percent, int | float) or percent <= 0:
            raise _fail(f"{here}.percent", f"must be a positive number, got {percent!r}")
        variants.append(
            Variant(name, _text(_required(spec, "template_id", here), here), float(percent))
        )
    if not variants:
        raise _fail(variants_where, "needs at least one variant")
    total = sum(variant.percent for variant in variants)
    if abs(total - 100) > 1e-9:
        raise _fail(variants_where, f"percentages must add up to 100, got {total:g}")
    return tuple(variants), template_data


def _parse_goal(body: Any, where: str) -> Goal:
    if body is None:
        return Goal()
    body = _mapping(body, where)
    _known_keys(body, ("touchpoint", "within_days"), where)
    return Goal(
        touchpoint=_identifier(body.get("touchpoint", "order_completed"), f"{where}.touchpoint"),
        within_days=_integer(body.get("within_days", 7), f"{where}.within_days", minimum=1),
    )


CAMPAIGN_KEYS = (
    "description",
    "priority",
    "marketing",
    "trigger",
    "entry_limit",
    "content",
    "holdout_percent",
    "goal",
    "from_email",
)


def _parse_campaign(campaign_id: Any, body: Any, origin: str) -> Campaign:
    where = f"campaigns.{campaign_id}"
    if not isinstance(campaign_id, str) or not CAMPAIGN_ID.match(campaign_id):
        raise _fail(where, "campaign ids are lower-case letters, digits and _, starting a letter")
    body = _mapping(body, where)
    _known_keys(body, CAMPAIGN_KEYS, where)
    variants, template_data = _parse_content(_required(body, "content", where), f"{where}.content")
    marketing = body.get("marketing", True)
    if not isinstance(marketing, bool):
        raise _fail(f"{where}.marketing", f"must be true or false, got {marketing!r}")
    return Campaign(
        campaign_id=campaign_id,
        trigger=_parse_trigger(_required(body, "trigger", where), f"{where}.trigger"),
        variants=variants,
        template_data=template_data,
        entry_limit=_parse_entry_limit(body.get("entry_limit"), f"{where}.entry_limit"),
        holdout_percent=_percent(body.get("holdout_percent", 0), f"{where}.holdout_percent"),
        priority=_integer(body.get("priority", 100), f"{where}.priority", minimum=1),
        marketing=marketing,
        goal=_parse_goal(body.get("goal"), f"{where}.goal"),
        from_email=_text(body["from_email"], f"{where}.from_email")
        if "from_email" in body
        else None,
        description=str(body.get("description", "")).strip(),
        origin=f"{origin}: {where}",
    )


POLICY_KEYS = (
    "global_control_percent",
    "frequency_cap",
    "quiet_hours",
    "default_time_zone",
    "max_send_delay_hours",
)


def _parse_policy(body: Any) -> Policy:
    where = "policy"
    body = _mapping(body or {}, where)
    _known_keys(body, POLICY_KEYS, where)
    cap = None
    if body.get("frequency_cap") is not None:
        spec = _mapping(body["frequency_cap"], f"{where}.frequency_cap")
        _known_keys(spec, ("max_messages", "per_days"), f"{where}.frequency_cap")
        cap = FrequencyCap(
            _integer(_required(spec, "max_messages", f"{where}.frequency_cap"),
                     f"{where}.frequency_cap.max_messages", 1),
            _integer(_required(spec, "per_days", f"{where}.frequency_cap"),
                     f"{where}.frequency_cap.per_days", 1),
        )  # fmt: skip
    quiet = None
    if body.get("quiet_hours") is not None:
        spec = _mapping(body["quiet_hours"], f"{where}.quiet_hours")
        _known_keys(spec, ("start", "end"), f"{where}.quiet_hours")
        quiet = QuietHours(
            _clock(_required(spec, "start", f"{where}.quiet_hours"), f"{where}.quiet_hours.start"),
            _clock(_required(spec, "end", f"{where}.quiet_hours"), f"{where}.quiet_hours.end"),
        )
        if quiet.start == quiet.end:
            raise _fail(f"{where}.quiet_hours", "start and end must differ")
    return Policy(
        global_control_percent=_percent(
            body.get("global_control_percent", 0), f"{where}.global_control_percent"
        ),
        frequency_cap=cap,
        quiet_hours=quiet,
        default_time_zone=_time_zone(
            body.get("default_time_zone", "UTC"), f"{where}.default_time_zone"
        ),
        max_send_delay_hours=_integer(
            body.get("max_send_delay_hours", 48), f"{where}.max_send_delay_hours", 1
        ),
    )


def parse_campaign_config(document: Any, origin: str = "<campaigns>") -> CampaignConfig:
    """Validate a parsed campaigns document; errors are prefixed with `origin`."""
    try:
        document = _mapping(document, "(top level)")
        _known_keys(document, ("policy", "campaigns"), "(top level)")
        campaigns = _mapping(_required(document, "campaigns", "(top level)"), "campaigns")
        parsed = [_parse_campaign(name, body, origin) for name, body in campaigns.items()]
        policy = _parse_policy(document.get("policy"))
    except CampaignConfigError as error:
        raise CampaignConfigError(f"{origin}: {error}") from None
    ordered = sorted(parsed, key=lambda campaign: (campaign.priority, campaign.campaign_id))
    return CampaignConfig(policy=policy, campaigns=tuple(ordered))


def load_campaign_config(path: Path) -> CampaignConfig:
    """Read and validate the campaigns YAML file."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CampaignConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_campaign_config(document, str(path))
