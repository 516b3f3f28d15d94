"""Pure helpers of pg_health_info: ratios, migration state, pg_stat_statements explanations."""

from __future__ import annotations

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health


def test_ratio_percent_is_none_when_nothing_was_measured():
    assert _pg_health.ratio_percent(0, 0) is None
    assert _pg_health.ratio_percent(99, 100) == 99.0
    assert _pg_health.ratio_percent(2, 3, 1) == 66.7


def row(rank, version, kind="versioned", success=True, description=""):
    return {
        "installed_rank": rank,
        "version": version,
        "type": kind,
        "success": success,
        "description": description,
        "installed_on": None,
    }


def test_migration_state_compares_versions_numerically_and_honours_undo():
    rows = [
        row(1, "1.9"),
        row(2, "1.10", description="ten"),
        row(3, "2"),
        row(4, "2", "undo"),
        row(5, "3", success=False),
        row(6, None, "repeatable"),
    ]
    state = _pg_health.migration_state(rows)
    assert state["version"] == "1.10"
    assert state["description"] == "ten"
    assert state["applied_count"] == 2
    assert state["failed_count"] == 1


def test_migration_state_of_an_empty_history():
    assert _pg_health.migration_state([])["version"] is None
    assert _pg_health.migration_state([row(1, "009"), row(2, "9", "undo")])["version"] is None


def test_statements_reasons():
    not_loaded = _pg_health.statements_unavailable_reason([], "", ["app"], None)
    assert "not in shared_preload_libraries" in not_loaded and "app" in not_loaded
    no_extension = _pg_health.statements_unavailable_reason(
        [], "auto_explain, pg_stat_statements", ["app"], None
    )
    assert "CREATE EXTENSION pg_stat_statements was not run in app" in no_extension
    unreadable = _pg_health.statements_unavailable_reason(["app"], "", ["app"], "must be loaded via ...")
    assert unreadable == "the extension is installed in app but cannot be read: must be loaded via ..."


class _RecordingConnection:
    """Records the SQL _migration sends (the table exists, the history is empty)."""

    def __init__(self):
        self.sql = []

    def cursor(self):
        conn = self

        class Cursor:
            description = (("found",),)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql, args=None):
                conn.sql.append(sql)

            def fetchall(self):
                return [(True,)] if len(conn.sql) == 1 else []

        return Cursor()


def test_migration_table_identifier_doubles_embedded_quotes():
    conn = _RecordingConnection()
    _pg_health._migration(conn, 'we"ird.hist"ory')
    assert conn.sql[-1] == 'SELECT * FROM "we""ird"."hist""ory"'


def test_lock_waits_are_skipped_before_14_with_the_reason():
    skips = _pg_health.version_skips(130023)
    assert set(skips) == {"lock_waits"}
    assert "PostgreSQL 13 does not record when a lock wait began" in skips["lock_waits"]
    assert _pg_health.version_skips(140000) == {}
    assert _pg_health.version_skips(180004) == {}


def test_migration_state_follows_the_migration_rules_for_baselines_and_odd_rows():
    rows = [row(1, "5", "baseline", description="baseline"), row(2, "6", description="six"),
            row(3, "not-a-version")]
    state = _pg_health.migration_state(rows)
    assert (state["version"], state["description"], state["applied_count"]) == ("6", "six", 2)
    assert _pg_health.migration_state([row(1, "5", "baseline", description="b")])["version"] == "5"
