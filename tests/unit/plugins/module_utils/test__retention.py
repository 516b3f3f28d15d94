"""Retention decisions: examples, and hypothesis against an independent reference model."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.dbops.datastores.plugins.module_utils._retention import (
    Item,
    Policy,
    decide,
    stale_partials,
)

UTC = dt.timezone.utc
RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def _items(times, group="g"):
    return [Item(f"{group}-{i:04d}", group, t) for i, t in enumerate(times)]


def _kept(decisions):
    return {d.id for d in decisions if d.keep}


# --------------------------------------------------------------------------- reference model

def _ref_period(rule, item):
    t = item.time.astimezone(UTC)
    return {
        "last": item.id,
        "hourly": (t.year, t.month, t.day, t.hour),
        "daily": t.date(),
        "weekly": tuple(t.isocalendar())[:2],
        "monthly": (t.year, t.month),
        "yearly": t.year,
    }[rule]


def reference_keep(items, policy):
    """Per group and rule: the newest item of every period, the N newest such periods; union."""
    groups = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    kept = set()
    for members in groups.values():
        ordered = sorted(members, key=lambda i: (i.time, i.id), reverse=True)
        for rule in RULES:
            n = getattr(policy, f"keep_{rule}")
            if n == 0:
                continue
            newest_of_period = {}
            for item in ordered:
                newest_of_period.setdefault(_ref_period(rule, item), item)
            representatives = sorted(newest_of_period.values(), key=lambda i: (i.time, i.id), reverse=True)
            kept |= {i.id for i in (representatives if n < 0 else representatives[:n])}
        if policy.keep_within:
            newest = ordered[0].time
            kept |= {i.id for i in ordered if newest - i.time < policy.keep_within}
        kept.add(ordered[0].id)
    return kept


times = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 12, 31),
                     timezones=st.just(UTC)).map(lambda t: t.replace(second=0, microsecond=0))
counts = st.sampled_from([0, 0, 0, 1, 2, 3, 5, -1])
policies = st.builds(
    Policy, keep_last=counts, keep_hourly=counts, keep_daily=counts, keep_weekly=counts,
    keep_monthly=counts, keep_yearly=counts,
    keep_within=st.one_of(st.none(), st.integers(1, 24 * 90).map(lambda h: dt.timedelta(hours=h))),
).filter(lambda p: not p.is_empty())
histories = st.lists(st.tuples(st.sampled_from(["pg/app", "pg/billing", "mongodb/app"]), times),
                     min_size=1, max_size=80)


@settings(max_examples=400, deadline=None)
@given(histories, policies)
def test_decisions_equal_the_reference_model(history, policy):
    items = [Item(f"b{i:03d}", group, t) for i, (group, t) in enumerate(history)]
    decisions = decide(items, policy)
    assert sorted(d.id for d in decisions) == sorted(i.id for i in items)
    assert _kept(decisions) == reference_keep(items, policy)


@settings(max_examples=200, deadline=None)
@given(histories, policies)
def test_newest_of_each_group_always_survives_and_reasons_are_given(history, policy):
    items = [Item(f"b{i:03d}", group, t) for i, (group, t) in enumerate(history)]
    decisions = decide(items, policy)
    kept = _kept(decisions)
    for group in {i.group for i in items}:
        newest = max((i for i in items if i.group == group), key=lambda i: (i.time, i.id))
        assert newest.id in kept
    for d in decisions:
        assert d.reasons
        assert (d.reasons == ["no rule keeps it"]) is (not d.keep)


def test_gfs_example_with_reasons():
    # Daily backups at 02:00 for 60 days, ending Tuesday 2026-11-24.
    end = dt.datetime(2026, 11, 24, 2, tzinfo=UTC)
    items = _items([end - dt.timedelta(days=d) for d in range(60)])
    decisions = decide(items, Policy(keep_daily=7, keep_weekly=4, keep_monthly=3))
    kept = {d.time.date().isoformat(): d.reasons for d in decisions if d.keep}
    assert sorted(kept) == sorted([
        "2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20", "2026-11-19", "2026-11-18",
        "2026-11-15", "2026-11-08",  # weekly: Sundays of the previous ISO weeks
        "2026-10-31", "2026-09-30",  # monthly: last backup of October and of September
    ])
    assert kept["2026-11-24"] == ["daily 2026-11-24", "weekly 2026-W48", "monthly 2026-11"]
    assert kept["2026-11-15"] == ["weekly 2026-W46"]
    assert kept["2026-09-30"] == ["monthly 2026-09"]


def test_unlimited_and_keep_last():
    items = _items([dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=h) for h in range(30)])
    assert len(_kept(decide(items, Policy(keep_daily=-1)))) == 2  # two days, newest of each
    assert len(_kept(decide(items, Policy(keep_last=5)))) == 5
    assert len(_kept(decide(items, Policy(keep_hourly=-1)))) == 30


def test_keep_within_is_relative_to_the_newest_backup():
    old = dt.datetime(2020, 1, 1, tzinfo=UTC)
    items = _items([old, old - dt.timedelta(hours=1), old - dt.timedelta(hours=3)])
    decisions = decide(items, Policy(keep_within=dt.timedelta(hours=2)))
    assert _kept(decisions) == {"g-0000", "g-0001"}
    assert {d.id: d.reasons for d in decisions}["g-0000"] == ["within"]


def test_newest_is_kept_even_when_no_rule_selects_it():
    t = dt.datetime(2026, 5, 5, tzinfo=UTC)
    policy = Policy(keep_yearly=0, keep_within=None, keep_last=0, keep_monthly=0, keep_daily=0,
                    keep_hourly=1)
    decisions = decide(_items([t, t - dt.timedelta(days=400)]), policy)
    assert _kept(decisions) == {"g-0000"}


def test_policy_problems():
    assert Policy().problems() == ["no keep_* rule is set, so every backup would be removed"]
    assert "keep_daily must be -1 (no limit) or >= 0, got -2" in Policy(keep_daily=-2).problems()
    assert Policy(keep_within=dt.timedelta(days=1)).problems() == []


def test_stale_partials():
    now = dt.datetime(2026, 1, 2, tzinfo=UTC)
    day = dt.timedelta(days=1)
    partials = [("old.partial", now - 2 * day, False), ("busy.partial", now - 2 * day, True),
                ("young.partial", now - dt.timedelta(hours=1), False)]
    assert stale_partials(partials, now, day) == ["old.partial"]
    assert stale_partials(partials, now, dt.timedelta(0)) == ["old.partial", "young.partial"]


def test_future_items_are_kept_apart_and_time_rules_run_from_now():
    now = dt.datetime(2026, 11, 24, 12, tzinfo=UTC)
    real = _items([now - dt.timedelta(days=d) for d in range(5)])
    future = Item("from-2031", "g", dt.datetime(2031, 1, 1, tzinfo=UTC), future=True)
    decisions = decide([*real, future], Policy(keep_within=dt.timedelta(days=2), keep_last=1), now=now)
    reasons = {d.id: d.reasons for d in decisions}
    assert reasons["from-2031"] == ["future"]
    assert _kept(decisions) == {"from-2031", "g-0000", "g-0001"}
    assert reasons["g-0000"] == ["last", "within"]
    # keep_within is measured from now when the newest real backup is later than now (within the
    # tolerance that keeps it from being "future").
    ahead = _items([now + dt.timedelta(minutes=3), now - dt.timedelta(hours=23, minutes=59),
                    now - dt.timedelta(hours=25)])
    assert _kept(decide(ahead, Policy(keep_within=dt.timedelta(days=1)), now=now)) == {"g-0000", "g-0001"}
    # Only future items: all kept, none removed.
    assert _kept(decide([future], Policy(keep_last=1), now=now)) == {"from-2031"}
