from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _migrate_policy as p
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

UTC = dt.timezone.utc


def at(text):
    return dt.datetime.fromisoformat(text)


def test_parse_window():
    w = p.parse_window("Sat 02:00-05:00 Europe/Berlin")
    assert (sorted(w.days), w.start_minute, w.end_minute, str(w.zone)) == ([5], 120, 300, "Europe/Berlin")
    assert sorted(p.parse_window("mon-fri 22:30-01:00 UTC").days) == [0, 1, 2, 3, 4]
    assert sorted(p.parse_window("Fri-Mon 00:00-24:00 UTC").days) == [0, 4, 5, 6]
    assert sorted(p.parse_window("Sat,Sunday 1:00-2:00 UTC").days) == [5, 6]
    assert p.parse_window("daily 03:00-04:00 Asia/Tokyo").days == frozenset(range(7))
    assert p.parse_window("Mon-Fri 22:30-01:00 UTC").duration == dt.timedelta(hours=2, minutes=30)


@pytest.mark.parametrize("text, cause", [
    ("Saturday night", "expected <days> <HH:MM>-<HH:MM> <time zone>"),
    ("Sat 02:00-05:00", "expected <days>"),
    ("Sat 02:00-05:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("Sat 25:00-26:00 UTC", "start 25:00 is not a time of day"),
    ("Sat 02:61-03:00 UTC", "start 02:61 is not a time of day"),
    ("Xyz 02:00-03:00 UTC", "'xyz' is not a day"),
    ("Sat 02:00-02:00 UTC", "opens and closes at the same time"),
    (42, "expected <days>"),
])
def test_parse_window_errors_name_the_window_and_the_cause(text, cause):
    with pytest.raises(DbopsError) as err:
        p.parse_window(text)
    assert err.value.msg.startswith(f"parse maintenance window {str(text)!r}: ")
    assert cause in err.value.msg


def test_parse_windows_reports_every_bad_window():
    with pytest.raises(DbopsError) as err:
        p.parse_windows(["Sat 02:00-05:00 UTC", "nope", "Sun 1:00-2:00 Nowhere/City"])
    assert len(err.value.details["problems"]) == 2
    assert [w.text for w in p.parse_windows("Sat 02:00-05:00 UTC")] == ["Sat 02:00-05:00 UTC"]
    with pytest.raises(DbopsError, match="expected a list of windows"):
        p.parse_windows({"day": "Sat"})


BERLIN = ["Sat 02:00-05:00 Europe/Berlin"]


@pytest.mark.parametrize("now, is_open, closes, next_open", [
    # Saturday 2026-11-28: Berlin is UTC+1.
    ("2026-11-28T01:30:00+00:00", True, "2026-11-28T05:00+01:00", "2026-12-05T02:00+01:00"),
    ("2026-11-28T00:59:00+00:00", False, None, "2026-11-28T02:00+01:00"),
    ("2026-11-28T04:00:00+00:00", False, None, "2026-12-05T02:00+01:00"),  # closed at 05:00 Berlin
    ("2026-11-30T18:00:00+00:00", False, None, "2026-12-05T02:00+01:00"),
    # Summer time (UTC+2): the window stays at 02:00 wall-clock time.
    ("2026-07-04T00:30:00+00:00", True, "2026-07-04T05:00+02:00", "2026-07-11T02:00+02:00"),
])
def test_window_state(now, is_open, closes, next_open):
    state = p.window_state(p.parse_windows(BERLIN), at(now))
    assert (state["open"], state["closes_at"], state["next_open"]) == (is_open, closes, next_open)
    assert state["next_window"] == BERLIN[0]


def test_window_across_midnight_belongs_to_the_day_it_opens():
    windows = p.parse_windows(["Fri 22:00-02:00 UTC"])
    assert p.window_state(windows, at("2026-12-05T01:59:00+00:00"))["open"] is True  # Saturday morning
    assert p.window_state(windows, at("2026-12-05T22:30:00+00:00"))["open"] is False  # Saturday night
    assert p.window_state(windows, at("2026-12-03T23:00:00+00:00"))["open"] is False  # Thursday night


def test_several_windows_the_earliest_next_one_wins_and_none_means_unrestricted():
    windows = p.parse_windows(["Sat 02:00-05:00 Europe/Berlin", "Wed 20:00-21:00 America/New_York"])
    state = p.window_state(windows, at("2026-11-30T18:00:00+00:00"))  # Monday
    assert state["next_window"] == "Wed 20:00-21:00 America/New_York"
    assert state["next_open"] == "2026-12-02T20:00-05:00"
    assert p.window_state([], at("2026-11-30T18:00:00+00:00"))["open"] is True
    with pytest.raises(DbopsError, match="no time zone"):
        p.window_state(windows, dt.datetime(2026, 11, 30))


def test_refusal_says_when_the_next_window_opens():
    state = p.window_state(p.parse_windows(BERLIN), at("2026-11-30T18:00:00+00:00"))
    msg = p.refusal(state, "prod", "dbops_migrate_ignore_window")
    assert msg == ("migrate in environment prod: outside the maintenance window; the next one"
                   " (Sat 02:00-05:00 Europe/Berlin) opens at 2026-12-05T02:00+01:00; set"
                   " dbops_migrate_ignore_window=true to migrate now anyway")
    assert p.refusal({"open": True}, "prod", "x") is None


def test_estimate_uses_the_last_backup_ratio_else_the_default():
    est = p.estimate_backup_bytes(1000, 250, margin=1.2)
    assert (est["factor"], est["factor_source"], est["estimated_bytes"]) == (0.25, "last backup", 300)
    est = p.estimate_backup_bytes(1000, None, default_factor=0.5, margin=1.0)
    assert (est["factor"], est["factor_source"], est["estimated_bytes"]) == (0.5, "default", 500)
    assert p.estimate_backup_bytes(0, 100)["estimated_bytes"] == 0
    with pytest.raises(DbopsError, match="negative"):
        p.estimate_backup_bytes(-1, None)
    with pytest.raises(DbopsError, match=r"margin 0\.5 at least 1"):
        p.estimate_backup_bytes(1, None, margin=0.5)


def test_space_problem():
    assert p.space_problem("/b", 10, 10, "postgresql:app") is None
    msg = p.space_problem("/b", 1024, 3 * 1024 * 1024, "postgresql:app")
    assert msg == ("check free space for the backup of postgresql:app: /b has 1.0 KiB free, the pre-migration"
                   " backup needs about 3.0 MiB (refusing before dumping)")
