"""Who gets which campaign: suppression, entry limits, holdouts, caps, priority, quiet hours.

Pure functions over the facts the audience query returns for each candidate, so every rule is
unit-tested without a database. Decision order, first match wins:

1. suppression that belongs to the person (erased, no e-mail, undeliverable, unsubscribed,
   spam report, no marketing consent, open support case), then the campaign's entry limit;
2. the global control group, then the campaign holdout (stored assignments are reused);
3. across campaigns, per person and run: the frequency cap, then priority (one marketing
   message per person and day);
4. quiet hours in the recipient's time zone: the message is `held` and scheduled for the moment
   the window opens.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journeyflow.campaigns import GLOBAL_CONTROL, Campaign, Policy, QuietHours

BUCKETS = 10_000  # hash buckets: assignment precision of 0.01 %
TREATMENT = "treatment"
HOLDOUT = "holdout"
GLOBAL_CONTROL_ARM = "global_control"


@dataclass
class Candidate:
    """One person the campaign's trigger selected for one trigger window, and the outcome."""

    campaign: Campaign
    person: dict[str, Any]
    trigger_window: Any
    decision: str | None = None
    reason: str | None = None
    arm: str | None = None
    variant: str | None = None
    send_at: datetime | None = None
    new_assignments: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def profile_id(self) -> str:
        return self.person["profile_id"]

    def settle(self, decision: str, reason: str) -> None:
        self.decision, self.reason = decision, reason


def bucket(scope: str, profile_id: str, salt: str = "") -> int:
    """A stable, uniform bucket in [0, BUCKETS) for (scope, profile)."""
    digest = hashlib.sha256(f"{scope}|{profile_id}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_share(scope: str, profile_id: str, percent: float) -> bool:
    """Whether the profile falls in the first `percent` % of the scope's buckets."""
    return bucket(scope, profile_id) < round(percent * BUCKETS / 100)


def pick_variant(campaign: Campaign, profile_id: str) -> str:
    """Variant by cumulative split percentages, hashed independently of the holdout."""
    point = bucket(campaign.campaign_id, profile_id, salt="variant")
    cumulative = 0.0
    for variant in campaign.variants:
        cumulative += variant.percent * BUCKETS / 100
        if point < cumulative:
            return variant.name
    return campaign.variants[-1].name


def personal_suppression(campaign: Campaign, person: dict[str, Any]) -> str | None:
    """Reason this person may not get the campaign at all, or None."""
    if person.get("is_erased"):
        return "erased"
    if not person.get("email"):
        return "no_email"
    if person.get("undeliverable_reason"):
        return f"email_{person['undeliverable_reason']}"
    if not campaign.marketing:
        return None
    if person.get("unsubscribed_at"):
        return "email_unsubscribed"
    if person.get("spam_reported_at"):
        return "email_spam_reported"
    if not person.get("email_consent"):
        return "no_marketing_consent"
    if person.get("has_open_support_case"):
        return "open_support_case"
    return None


def entry_limit_reason(campaign: Campaign, last_entry_at: datetime | None, as_of: datetime):
    """Reason the person may not enter again (they entered before), or None."""
    limit = campaign.entry_limit
    if last_entry_at is None or limit.kind == "after_exit":
        return None
    if limit.kind == "once" or last_entry_at > as_of - timedelta(days=limit.days):
        return f"entry_limit_{limit.describe()}"
    return None


def quiet_until(as_of: datetime, time_zone: str, quiet: QuietHours) -> datetime | None:
    """When the recipient's quiet hours end (UTC), if `as_of` falls inside them; else None."""
    local = as_of.astimezone(ZoneInfo(time_zone))
    now = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= now < quiet.end
    else:  # the window spans midnight, e.g. 21:00-08:00
        inside = now >= quiet.start or now < quiet.end
    if not inside:
        return None
    day = local.date() if now < quiet.end else local.date() + timedelta(days=1)
    opening = datetime.combine(day, quiet.end, tzinfo=ZoneInfo(time_zone))
    return opening.astimezone(UTC)


def recipient_time_zone(person: dict[str, Any], policy: Policy) -> str:
    """The person's time zone when it is known and valid, else the policy default."""
    name = person.get("time_zone")
    if name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return policy.default_time_zone


def _assign_arm(candidate: Candidate, policy: Policy) -> None:
    """Global control, then campaign holdout, then variant: stored values win, new ones recorded."""
    campaign, person = candidate.campaign, candidate.person
    if campaign.marketing and policy.global_control_percent > 0:
        global_arm = person.get("stored_global_arm")
        if global_arm is None:
            in_control = in_share(
                GLOBAL_CONTROL, candidate.profile_id, policy.global_control_percent
            )
            global_arm = GLOBAL_CONTROL_ARM if in_control else TREATMENT
            candidate.new_assignments.append((GLOBAL_CONTROL, global_arm, None))
        if global_arm == GLOBAL_CONTROL_ARM:
            candidate.arm = GLOBAL_CONTROL_ARM
            candidate.settle("holdout", "global_control")
            return
    arm, variant = person.get("stored_arm"), person.get("stored_variant")
    if arm is None:
        holdout = in_share(campaign.campaign_id, candidate.profile_id, campaign.holdout_percent)
        arm = HOLDOUT if holdout else TREATMENT
        variant = None if holdout else pick_variant(campaign, candidate.profile_id)
        candidate.new_assignments.append((campaign.campaign_id, arm, variant))
    candidate.arm, candidate.variant = arm, variant
    if arm == HOLDOUT:
        candidate.settle("holdout", "campaign_holdout")


def _screen(candidate: Candidate, policy: Policy, as_of: datetime) -> None:
    """Steps 1 and 2: personal suppression, entry limit, holdout assignment."""
    reason = personal_suppression(candidate.campaign, candidate.person) or entry_limit_reason(
        candidate.campaign, candidate.person.get("last_entry_at"), as_of
    )
    if reason:
        candidate.settle("suppressed", reason)
        return
    _assign_arm(candidate, policy)


def _arbitrate(contenders: list[Candidate], policy: Policy) -> Candidate | None:
    """Step 3 for one person's marketing candidates: the winner, the others suppressed."""
    contenders.sort(key=lambda c: (c.campaign.priority, c.campaign.campaign_id))
    person = contenders[0].person
    cap = policy.frequency_cap
    if person.get("todays_campaign"):
        reason = f"priority:{person['todays_campaign']}"
        for candidate in contenders:
            candidate.settle("suppressed", reason)
        return None
    if cap and (person.get("recent_marketing_messages") or 0) >= cap.max_messages:
        reason = f"frequency_cap_{cap.max_messages}_per_{cap.per_days}_days"
        for candidate in contenders:
            candidate.settle("suppressed", reason)
        return None
    winner, *losers = contenders
    for candidate in losers:
        candidate.settle("suppressed", f"priority:{winner.campaign.campaign_id}")
    return winner


def _schedule(candidate: Candidate, policy: Policy, as_of: datetime) -> None:
    """Step 4: send now, or hold until the recipient's quiet hours end."""
    if candidate.campaign.marketing and policy.quiet_hours:
        zone = recipient_time_zone(candidate.person, policy)
        opening = quiet_until(as_of, zone, policy.quiet_hours)
        if opening is not None:
            candidate.send_at = opening
            candidate.settle("held", "quiet_hours")
            return
    candidate.settle("send", "eligible")


def decide_all(candidates: list[Candidate], policy: Policy, as_of: datetime) -> list[Candidate]:
    """Decide every candidate of one run (all campaigns together); returns them, settled."""
    contenders: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        _screen(candidate, policy, as_of)
        if candidate.decision is None:
            if candidate.campaign.marketing:
                contenders[candidate.profile_id].append(candidate)
            else:
                _schedule(candidate, policy, as_of)
    for group in contenders.values():
        winner = _arbitrate(group, policy)
        if winner is not None:
            _schedule(winner, policy, as_of)
    return candidates
