"""The HTML report filter: ordering, absent sections, escaping, no external assets."""

from __future__ import annotations

import re

from ansible_collections.dbops.datastores.plugins.filter import health_report as report


def pg_entry(host, score, status, **extra):
    health = {
        "score": score,
        "status": status,
        "size_bytes": 2048,
        "server": {"version": "15.18", "uptime_seconds": 7200},
        "replication": {"role": "primary"},
        "connections": {"current": 5, "max": 100, "usage_percent": 5.0},
        "cache": {"hit_ratio_percent": 97.25},
        "thresholds": {"cache_hit_warning_percent": 90},
        "findings": [],
        "checks": [],
        "tables": [],
        "migrations": [],
    }
    health.update(extra)
    return {"host": host, "engine": "postgresql", "health": health}


def test_hosts_are_ordered_worst_first():
    hosts = [
        pg_entry("a-ok", 100, "ok"),
        pg_entry("b-warn", 90, "warning"),
        pg_entry("c-crit", 95, "critical"),
        {"host": "d-down", "engine": "mongodb", "error": "refused"},
        pg_entry("e-warn", 70, "warning"),
    ]
    assert [h["host"] for h in report.order_hosts(hosts)] == ["d-down", "c-crit", "e-warn", "b-warn", "a-ok"]


def test_page_is_self_contained_and_escapes_input():
    html = report.render(
        [
            pg_entry(
                "<db1>",
                80,
                "warning",
                findings=[
                    {
                        "check": "slow_queries",
                        "severity": "warning",
                        "object": "queryid 1",
                        "message": "mean 150 ms: SELECT '<script>alert(1)</script>'",
                        "fix": "EXPLAIN it",
                    }
                ],
            )
        ],
        title="Prod & co",
        generated_at="2026-11-24 21:00 UTC",
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html and "&lt;db1&gt;" in html and "Prod &amp; co" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_absent_sections_are_labelled_not_zero():
    entry = {
        "host": "m1",
        "engine": "mongodb",
        "health": {
            "score": 100,
            "status": "ok",
            "server": {},
            "connections": None,
            "cache": None,
            "findings": [],
            "checks": [],
            "collections": [],
            "absent": ["wiredTiger", "globalLock"],
            "size_bytes": None,
        },
    }
    html = report.render([entry])
    assert 'data-metric="cache_used">not reported' in html
    assert 'data-metric="connections_current">not reported' in html
    assert 'data-metric="backup">not configured' in html
    assert 'data-metric="migration">not configured' in html
    assert "not reported by the server: wiredTiger, globalLock" in html


def test_numbers_are_shown_as_given():
    entry = pg_entry(
        "db1",
        87,
        "warning",
        tables=[
            {
                "database": "app",
                "schema": "public",
                "name": "orders",
                "total_bytes": 4096,
                "table_bytes": 4096,
                "live_tuples": 75,
                "dead_tuples": 25,
            },
            {
                "database": "app",
                "schema": "public",
                "name": "users",
                "total_bytes": 1024,
                "table_bytes": 1024,
                "live_tuples": 10,
                "dead_tuples": 0,
            },
        ],
        migrations=[{"database": "app", "version": "009", "description": "ten tables", "failed_count": 0}],
    )
    entry["backup"] = {
        "newest_age_s": 3600.0,
        "stale": False,
        "groups": [
            {"database": "app", "count": 3, "size": 10, "latest_age_s": 3600.0, "latest_verified": "x"}
        ],
    }
    html = report.render([entry])
    assert 'data-metric="score">87<' in html
    assert 'data-metric="cache_hit_ratio">97.2%<' in html or 'data-metric="cache_hit_ratio">97.3%<' in html
    assert 'data-table="app.public.orders" data-bytes="4096"' in html
    assert 'data-metric="migration_version" data-database="app">009<' in html
    assert 'data-metric="backup_age_s" data-value="3600.0">60 min ago' in html
    assert "25% dead tuples" in html


def test_stale_backup_and_failed_host():
    entry = pg_entry("db1", 100, "ok")
    entry["backup"] = {
        "newest_age_s": 200000.0,
        "stale": True,
        "stale_reasons": ["postgresql/app newest backup is 2d old"],
        "groups": [],
    }
    entry["backup_max_age"] = "24h"
    down = {"host": "db2", "engine": "postgresql", "error": "connect to PostgreSQL at x: refused"}
    html = report.render([entry, down])
    assert "postgresql/app newest backup is 2d old" in html and "(limit 24h)" in html
    assert 'data-host="db2" data-status="failed"' in html
    assert "connect to PostgreSQL at x: refused" in html
    assert "2 hosts: 1 failed, 1 ok" in html
    assert 'data-backup-state="stale"' in html and "backups stale</span>" in html
    assert 'data-backup-state="not configured"' in html


def test_connection_limit_not_reported_is_not_100_percent():
    entry = pg_entry("m1", 100, "ok", connections={"current": 3, "available_reported": False})
    html = report.render([entry])
    assert 'data-metric="connections_max">limit not reported' in html
    assert "% in use" not in html


def test_pgbackrest_recovery_window_next_to_the_logical_catalog():
    entry = pg_entry("db1", 100, "ok")
    entry["backup"] = {"newest_age_s": 60.0, "stale": False, "groups": []}
    summary = "stanza main: can restore to any moment between 2026-11-30T22:59:07Z and 2026-11-30T23:10:00Z"
    entry["pgbackrest"] = {"stanzas": [{"name": "main", "summary": summary}]}
    unreadable = pg_entry("db2", 100, "ok")
    unreadable["pgbackrest"] = {"failed": True, "msg": "read stanza <main>: unknown"}
    html = report.render([entry, unreadable])
    assert f'data-metric="pgbackrest">pgBackRest {summary}</div>' in html
    assert "pgBackRest: read stanza &lt;main&gt;: unknown" in html
    assert 'data-metric="pgbackrest"' not in report.render([pg_entry("db3", 100, "ok")])
