# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention policy: which backups to keep, restic-style (GFS), as a pure function.

For every group (engine + database) backups are ordered newest first. Each ``keep_*`` rule walks
that list and keeps the newest backup of each new period (hour, day, ISO week, month, year; for
``keep_last`` every backup is its own period) until it has kept ``n`` of them (``-1`` means no
limit). ``keep_within`` keeps every backup younger than the given duration measured back from the
group's newest backup (or from now, when given and earlier), so a stopped schedule never ages every
backup out. A backup is kept when any rule keeps it; all the rules that keep it are reported. The
newest backup of each group is always kept. Periods are calendar periods in UTC.

Items marked ``future`` (dated later than now: taken while the host clock was wrong; the caller
decides, see ``_backup_catalog.is_future``) are kept with the reason ``future`` and left out of every
rule: they neither take a rule's slot nor move the point ``keep_within`` measures from, so one of
them never makes the real backups look old, and no time rule removes it either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


@dataclass(frozen=True)
class Policy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: dt.timedelta | None = None

    def counts(self) -> dict[str, int]:
        return {rule: int(getattr(self, f"keep_{rule}") or 0) for rule in RULES}

    def is_empty(self) -> bool:
        return not any(self.counts().values()) and not self.keep_within

    def problems(self) -> list[str]:
        found = [f"keep_{rule} must be -1 (no limit) or >= 0, got {n}"
                 for rule, n in self.counts().items() if n < -1]
        if self.keep_within is not None and self.keep_within < dt.timedelta(0):
            found.append("keep_within must not be negative")
        if self.is_empty():
            found.append("no keep_* rule is set, so every backup would be removed")
        return found


@dataclass(frozen=True)
class Item:
    id: str
    group: Hashable
    time: dt.datetime
    future: bool = False  # dated in the future: kept, and ignored by every rule


@dataclass
class Decision:
    id: str
    group: Hashable
    time: dt.datetime
    keep: bool
    reasons: list[str] = field(default_factory=list)


def period(rule: str, when: dt.datetime, item_id: str) -> Hashable:
    """The calendar period of ``when`` (UTC) for a rule; ``keep_last`` gives each backup its own."""
    t = when.astimezone(dt.timezone.utc)
    if rule == "last":
        return item_id
    if rule == "hourly":
        return t.strftime("%Y-%m-%d %H:00")
    if rule == "daily":
        return t.strftime("%Y-%m-%d")
    if rule == "weekly":
        year, week, _weekday = t.isocalendar()
        return f"{year}-W{week:02d}"
    if rule == "monthly":
        return t.strftime("%Y-%m")
    if rule == "yearly":
        return t.strftime("%Y")
    raise ValueError(f"unknown retention rule {rule}")


def _decide_group(items: list[Item], policy: Policy, now: dt.datetime | None) -> list[Decision]:
    ordered = sorted(items, key=lambda i: (i.time, i.id), reverse=True)
    decisions = [Decision(i.id, i.group, i.time, i.future, ["future"] if i.future else []) for i in ordered]
    present = [(item, decision) for item, decision in zip(ordered, decisions) if not item.future]
    for rule, count in policy.counts().items():
        if count == 0:
            continue
        remaining = count
        last_period: Hashable = None
        for item, decision in present:
            if remaining == 0:
                break
            key = period(rule, item.time, item.id)
            if key == last_period:
                continue
            last_period = key
            decision.keep = True
            decision.reasons.append(f"{rule} {key}" if rule != "last" else "last")
            if remaining > 0:
                remaining -= 1
    if policy.keep_within and present:
        newest = present[0][0].time if now is None else min(present[0][0].time, now)
        cutoff = newest - policy.keep_within
        for item, decision in present:
            if item.time > cutoff:
                decision.keep = True
                decision.reasons.append("within")
    if present and not present[0][1].keep:
        present[0][1].keep = True
        present[0][1].reasons.append("newest")
    for decision in decisions:
        if not decision.keep:
            decision.reasons.append("no rule keeps it")
    return decisions


def decide(items: Iterable[Item], policy: Policy, now: dt.datetime | None = None) -> list[Decision]:
    """Keep/remove for every item, grouped by ``item.group``; newest first within each group.

    ``now`` bounds the point ``keep_within`` measures from (a newest backup a little ahead of this
    host's clock does not stretch the window)."""
    groups: dict[Hashable, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    result: list[Decision] = []
    for group in sorted(groups, key=str):
        result.extend(_decide_group(groups[group], policy, now))
    return result


def stale_partials(partials: Iterable[tuple[str, dt.datetime, bool]], now: dt.datetime,
                   max_age: dt.timedelta) -> list[str]:
    """Names of partial backups to remove: older than ``max_age`` and not being written."""
    return [name for name, started, active in partials if not active and now - started > max_age]
