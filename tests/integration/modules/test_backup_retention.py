"""backup_retention and backup_info on a backup root with a known history, through ansible-playbook."""

from __future__ import annotations

import datetime as dt
import os

from tests.harness import backups as bk

UTC = dt.timezone.utc


def _history(root, outside):
    """Backups, partials and foreign entries; returns what the policy below must remove."""
    pg = {day: bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 11, day, 12, tzinfo=UTC))
          for day in range(1, 11)}
    october = bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 10, 15, 12, tzinfo=UTC))
    mongo = [bk.fake_backup(root, "mongodb", "app", dt.datetime(2026, 11, 10, hour, tzinfo=UTC))
             for hour in (1, 2, 3)]
    # Foreign things: a file, a directory, a directory with a manifest that does not match its name,
    # and a symlink to a valid-looking backup outside the root.
    (root / "notes.txt").write_text("ops notes")
    (root / "old-dumps").mkdir()
    (root / "old-dumps" / "app.sql").write_text("-- hand-made dump")
    bogus = bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 9, 1, tzinfo=UTC))
    os.rename(root / bogus, root / "pg-app-renamed")
    outside_id = bk.fake_backup(outside, "postgresql", "app", dt.datetime(2025, 1, 1, tzinfo=UTC))
    os.symlink(outside / outside_id, root / outside_id)
    old = dt.datetime.now(UTC) - dt.timedelta(days=3)
    stale = bk.fake_partial(root, "pg-app-stale", old, pid=bk.dead_pid())
    active = bk.fake_partial(root, "pg-app-active", old, pid=os.getpid())
    expected_remove = sorted([pg[day] for day in range(1, 8)] + mongo[:2])
    expected_keep = sorted([october, pg[8], pg[9], pg[10], mongo[2]])
    return expected_remove, expected_keep, stale, active, outside_id


def test_retention_four_steps_with_foreign_entries(ansible, tmp_path):
    root, outside = tmp_path / "backups", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    remove, keep, stale, active, link = _history(root, outside)
    before = bk.entries(root)
    args = {"root": str(root), "keep_daily": 3, "keep_weekly": 2, "keep_monthly": 2}

    check = ansible.module("backup_retention", args, check=True, diff=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True
    assert sorted(check["remove"]) == remove
    assert sorted(check["keep"]) == keep
    assert check["stale_partials"] == [stale] and check["active_partials"] == [active]
    assert check["removed"] == [] and check["removed_partials"] == []
    assert bk.entries(root) == before
    reasons = {d["id"]: d["reasons"] for d in check["decisions"]}
    october = next(k for k in keep if "20261015" in k)
    assert reasons[october] == ["monthly 2026-10"]
    assert reasons[max(k for k in keep if k.startswith("pg-"))] == ["daily 2026-11-10", "weekly 2026-W46",
                                                                    "monthly 2026-11"]
    assert reasons[remove[0]] == ["no rule keeps it"]
    assert sorted(check["ignored"]) == sorted(["notes.txt", "old-dumps", "pg-app-renamed", link])

    applied = ansible.module("backup_retention", args)
    assert applied["changed"] is True, applied
    assert sorted(applied["removed"]) == remove
    assert applied["removed_partials"] == [stale]
    assert applied["freed_bytes"] > 0

    again = ansible.module("backup_retention", args)
    assert again["changed"] is False, again
    assert again["removed"] == [] and again["remove"] == []

    left = bk.entries(root)
    assert sorted(left) == sorted([*keep, active, "notes.txt", "old-dumps", "pg-app-renamed", link])
    assert (root / "old-dumps" / "app.sql").read_text() == "-- hand-made dump"
    assert os.path.islink(root / link) and (outside / link / "manifest.json").exists()


def test_retention_refuses_an_empty_policy_and_keeps_newest(ansible, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    ids = [bk.fake_backup(root, "postgresql", "app", dt.datetime(2026, 1, d, tzinfo=UTC)) for d in (1, 2)]
    empty = ansible.module("backup_retention", {"root": str(root)})
    assert empty["failed"] is True and "no keep_* rule is set" in empty["msg"]
    assert bk.entries(root) == sorted(ids)
    # keep_within counts back from the newest backup: a stopped schedule does not age everything out.
    within = ansible.module("backup_retention", {"root": str(root), "keep_within": "1h"})
    assert within["removed"] == [ids[0]]
    assert bk.entries(root) == [ids[1]]
    missing = ansible.module("backup_retention", {"root": str(tmp_path / "nope"), "keep_last": 1})
    assert missing["failed"] is True and "does not exist" in missing["msg"]


def test_backup_info_freshness(ansible, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    now = dt.datetime.now(UTC)
    old = bk.fake_backup(root, "postgresql", "billing", now - dt.timedelta(hours=30))
    fresh = bk.fake_backup(root, "mongodb", "app", now - dt.timedelta(hours=2))
    (root / "README").write_text("foreign")

    info = ansible.module("backup_info", {"root": str(root), "max_age": "24h"}, check=True)
    assert info.get("failed") is not True, info  # read-only: runs the same in check mode
    assert info["changed"] is False
    assert [b["id"] for b in info["backups"]] == [fresh, old]
    assert info["stale"] is True
    assert info["stale_reasons"] == [f"postgresql/billing newest backup {old} is 30.0h old"]
    assert info["ignored"] == ["README"]
    assert {g["database"]: g["count"] for g in info["groups"]} == {"billing": 1, "app": 1}
    assert info["backups"][0]["verification"] == "unverified"

    alert = ansible.module("backup_info", {"root": str(root), "max_age": "24h", "fail_when_stale": True})
    assert alert["failed"] is True
    assert "check backup freshness" in alert["msg"] and "postgresql/billing" in alert["msg"]

    ok = ansible.module("backup_info", {"root": str(root), "database": "app", "max_age": "1d",
                                        "fail_when_stale": True})
    assert ok.get("failed") is not True and ok["stale"] is False, ok

    nothing = ansible.module("backup_info", {"root": str(root), "database": "nope", "max_age": "1d",
                                             "fail_when_stale": True})
    assert nothing["failed"] is True and "no complete backup of nope" in nothing["msg"]
