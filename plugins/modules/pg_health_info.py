#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_health_info
short_description: Health facts and a 0-100 health score for a PostgreSQL server
version_added: 0.1.0
description:
  - Reads C(pg_stat_database), C(pg_stat_activity), C(pg_locks), C(pg_stat_replication),
    C(pg_replication_slots), and per inspected database C(pg_stat_user_tables),
    C(pg_statio_user_tables), C(pg_stat_user_indexes) and C(pg_statio_user_indexes); reads
    C(pg_stat_statements) when the extension is installed in an inspected database and loaded, and
    says why not otherwise (RV(statements.reason)).
  - Scores the facts with the documented model shared with M(dbops.datastores.mongodb_health_info)
    (see C(docs/health.md) in the collection) and returns the score, the status and the findings,
    each with its severity and the fix an operator would apply. Every threshold is an option.
  - Works as a member of C(pg_monitor) (for example the monitor user of the C(db_monitoring) role);
    a superuser is not needed. Changes nothing.
  - Reports the current migration version recorded by M(dbops.datastores.pg_migrate) in each
    inspected database that has the history table.
options:
  databases:
    description:
      - Databases whose tables and indexes are inspected (one connection each).
      - Default is every database that accepts connections and that the login may connect to.
      - Cluster-wide facts (connections, activity, locks, replication, database sizes) always come
        from the database of the login connection (O(login_db)).
    type: list
    elements: str
  max_tables:
    description:
      - How many tables (largest first) RV(tables) lists. Checks always look at every table.
    type: int
    default: 20
  statements_top:
    description:
      - How many statements RV(statements.slow) and RV(statements.top_total_time) list.
    type: int
    default: 10
  migration_table:
    description:
      - History table of M(dbops.datastores.pg_migrate), optionally schema-qualified. In every
        inspected database that has it, the current version is reported in RV(migrations).
      - Set to an empty string to skip.
    type: str
    default: dbops_schema_history
  thresholds:
    description:
      - Thresholds of the scoring model. Unset keys keep their defaults.
    type: dict
    default: {}
    suboptions:
      connections_warning_percent:
        description: Connections in use, as a percentage of C(max_connections), that make a warning.
        type: float
        default: 80.0
      connections_critical_percent:
        description: Connections in use (percent of C(max_connections)) that make the check critical.
        type: float
        default: 95.0
      cache_hit_warning_percent:
        description: Buffer cache hit ratio (all databases) at or below which the check warns.
        type: float
        default: 90.0
      cache_hit_critical_percent:
        description: Buffer cache hit ratio at or below which the check is critical.
        type: float
        default: 80.0
      cache_min_blocks:
        description: >-
          Block reads (hits + reads) needed before the cache hit ratio is judged; fewer skip the
          check.
        type: int
        default: 1000
      long_query_warning_seconds:
        description: Active queries running this long or longer are reported and warn.
        type: float
        default: 60.0
      long_query_critical_seconds:
        description: Active queries running this long make the check critical.
        type: float
        default: 300.0
      idle_in_transaction_warning_seconds:
        description: Sessions idle in a transaction for this long warn.
        type: float
        default: 60.0
      idle_in_transaction_critical_seconds:
        description: Sessions idle in a transaction for this long are critical.
        type: float
        default: 600.0
      lock_wait_warning_seconds:
        description: Sessions waiting on a lock for this long warn.
        type: float
        default: 5.0
      lock_wait_critical_seconds:
        description: Sessions waiting on a lock for this long are critical.
        type: float
        default: 30.0
      dead_tuples_warning_percent:
        description: Dead tuples as a percentage of a table's tuples that warn.
        type: float
        default: 20.0
      dead_tuples_critical_percent:
        description: Dead tuple percentage that is critical.
        type: float
        default: 50.0
      dead_tuples_min:
        description: Tables with fewer dead tuples than this are not judged (small tables).
        type: int
        default: 1000
      stale_statistics_min_changes:
        description: Rows changed since the last analyze needed before a table's statistics count as stale.
        type: int
        default: 1000
      stale_statistics_percent:
        description: >-
          Rows changed since the last analyze, as a percentage of live rows, that make
          statistics stale.
        type: float
        default: 20.0
      unused_index_min_bytes:
        description: Unused indexes smaller than this are not reported.
        type: int
        default: 1048576
      unused_index_min_observation_seconds:
        description: >-
          Unused-index findings need statistics that cover at least this long (since the statistics
          were reset or the server started); before that the check is skipped as "not enough data".
        type: float
        default: 604800.0
      index_usage_min_percent:
        description: >-
          Tables whose share of index scans is below this percentage warn (sequential scans on
          large tables).
        type: float
        default: 50.0
      index_usage_min_rows:
        description: Only tables with at least this many live rows are judged for index usage.
        type: int
        default: 10000
      index_usage_min_scans:
        description: >-
          Only tables with at least this many scans (sequential + index) are judged for index
          usage.
        type: int
        default: 100
      slow_query_warning_ms:
        description: Statements in C(pg_stat_statements) with a mean execution time at or above this warn.
        type: float
        default: 100.0
      slow_query_critical_ms:
        description: Mean execution time that makes a statement critical.
        type: float
        default: 1000.0
      slow_query_min_calls:
        description: Statements called fewer times than this are not judged.
        type: int
        default: 1
      replication_lag_warning_seconds:
        description: Replay lag of a standby that warns.
        type: float
        default: 30.0
      replication_lag_critical_seconds:
        description: Replay lag of a standby that is critical.
        type: float
        default: 300.0
      slot_retained_warning_bytes:
        description: WAL retained by a replication slot that warns (an inactive slot always warns).
        type: int
        default: 1073741824
      slot_retained_critical_bytes:
        description: WAL retained by a replication slot that is critical.
        type: int
        default: 10737418240
      xid_age_warning:
        description: Age of a database's oldest unfrozen transaction ID (C(age(datfrozenxid))) that warns.
        type: int
        default: 500000000
      xid_age_critical:
        description: Transaction ID age that is critical (wraparound stops writes at about 2 billion).
        type: int
        default: 1000000000
      archive_failure_recent_seconds:
        description:
          - A WAL archiving failure (C(pg_stat_archiver.last_failed_time)) this recent warns even when a
            later segment was archived (intermittent failures). A failure newer than the last success
            is always critical.
        type: float
        default: 3600.0
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes.info_module
seealso:
  - module: dbops.datastores.mongodb_health_info
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Health facts as the monitor user
  dbops.datastores.pg_health_info:
    login_host: db1.example.com
    login_user: monitor
    login_password: "{{ vault_pg_monitor_password }}"
  register: health

- name: Page when the score drops
  ansible.builtin.assert:
    that: health.score >= 70
    fail_msg: "{{ health.findings | map(attribute='message') | list }}"

- name: Stricter cache target, only the app database, slow queries from 50 ms
  dbops.datastores.pg_health_info:
    login_unix_socket: /var/run/postgresql
    databases: [app]
    thresholds:
      cache_hit_warning_percent: 99
      slow_query_warning_ms: 50
"""

RETURN = r"""
score:
  description: Health score 0-100 (null when no check could be evaluated).
  returned: always
  type: int
  sample: 87
status:
  description: Worst severity found, C(ok), C(warning) or C(critical).
  returned: always
  type: str
  sample: warning
findings:
  description: What is wrong, most severe first. C(severity) is C(critical), C(warning) or C(info).
  returned: always
  type: list
  elements: dict
  sample:
    - check: dead_tuples
      severity: critical
      object: app.public.orders
      message: 15000 dead tuples, 75.0% of the table (autovacuum is disabled for this table)
      value: 75.0
      threshold: 50.0
      fix: VACUUM (ANALYZE) "public"."orders"; in database app; ...
checks:
  description: >-
    Each check with its weight, status (C(ok), C(warning), C(critical), C(skipped)) and why it was
    skipped.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "cache_hit_ratio", "title": "Buffer cache hit ratio", "weight": 15, "status": "ok",
            "reason": null, "findings": 0}]
thresholds:
  description: The thresholds used.
  returned: always
  type: dict
server:
  description: Version, role, uptime, connection limits, C(shared_preload_libraries), collection time.
  returned: always
  type: dict
  sample: {"version": "15.18", "version_num": 150018, "in_recovery": false, "max_connections": 100,
           "uptime_seconds": 86400.0, "login_user": "monitor", "collected_at": "2026-11-24T21:00:00+00:00"}
connections:
  description: Client connections now, the limit, the usage percentage and counts by state and database.
  returned: always
  type: dict
  sample: {"current": 12, "max": 100, "usage_percent": 12.0, "by_state": {"active": 2, "idle": 10},
           "by_database": {"app": 12}}
cache:
  description: >-
    Buffer cache hits and reads over all databases, the hit ratio, and table/index hit ratios of the
    inspected databases.
  returned: always
  type: dict
  sample: {"blocks_hit": 990000, "blocks_read": 10000, "hit_ratio_percent": 99.0,
           "table_hit_ratio_percent": 98.7, "index_hit_ratio_percent": 99.5}
size_bytes:
  description: Total size of all (non-template) databases.
  returned: always
  type: int
databases:
  description: >-
    Per database size, connections, commits/rollbacks, cache hit ratio, deadlocks, temp files,
    transaction ID age, statistics reset time.
  returned: always
  type: list
  elements: dict
tables:
  description:
    - The largest tables (O(max_tables)) of the inspected databases, with sizes, live/dead tuples,
      dead tuple percentage, bloat estimate (share of C(pg_table_size) taken by dead tuples), scans,
      index usage, cache hit ratio, last (auto)vacuum and (auto)analyze, whether autovacuum is
      enabled for the table, and C(locked) (no sizes while another session holds it exclusively).
  returned: always
  type: list
  elements: dict
tables_total:
  description: Number of tables in the inspected databases.
  returned: always
  type: int
unused_indexes:
  description: >-
    Indexes never scanned since statistics were reset (unique, primary key and constraint indexes
    excluded), largest first.
  returned: always
  type: list
  elements: dict
activity:
  description: >-
    Active queries running at least the smaller long-query threshold (C(long_running)) and sessions
    idle in transaction (C(idle_in_transaction)).
  returned: always
  type: dict
locks:
  description:
    - Locks by mode, how many wait, and the sessions waiting with the pids blocking them.
    - C(blocked[].wait_seconds) is null on PostgreSQL 13, which does not record when a wait began.
  returned: always
  type: dict
unavailable_checks:
  description:
    - Checks the server's version cannot evaluate, check id to the reason; such a check is reported
      C(skipped) with that reason. Empty on PostgreSQL 14 and newer; on 13 it holds C(lock_waits).
  returned: always
  type: dict
  sample: {"lock_waits": "PostgreSQL 13 does not record when a lock wait began (...)"}
statements:
  description:
    - C(pg_stat_statements) facts, or why they are not available.
  returned: always
  type: dict
  contains:
    available:
      description: Whether the extension is installed in an inspected database and loaded.
      type: bool
      sample: false
    reason:
      description: Why not, when not available (not preloaded, not created, or unreadable).
      type: str
      sample: "pg_stat_statements is not in shared_preload_libraries and the extension is not installed ..."
    database:
      description: The database whose C(pg_stat_statements) view was read.
      type: str
    slow:
      description: Statements with a mean time at or above O(thresholds.slow_query_warning_ms), slowest first.
      type: list
      elements: dict
    top_total_time:
      description: The statements with the largest total time.
      type: list
      elements: dict
replication:
  description: >-
    C(role) (primary/standby), connected C(replicas) with their C(state) and lags (C(lag_bytes),
    C(replay_lag_seconds)), on a standby C(standby) with its replay lag (C(replay_lag_seconds),
    C(lag_bytes)) and C(wal_receiver_status) (C(streaming), ..., null when no WAL receiver runs,
    C(hidden) when the login may not read it), replication C(slots) with C(active) and
    C(retained_bytes).
  returned: always
  type: dict
archiver:
  description: >-
    C(pg_stat_archiver) and C(archive_mode) - archived and failed counts, last archived and last
    failed segment and time (ISO 8601), and their ages in seconds as the server measures them
    (C(last_archived_seconds_ago), C(last_failed_seconds_ago)).
  returned: always
  type: dict
migrations:
  description: Current migration version per inspected database that has O(migration_table).
  returned: always
  type: list
  elements: dict
  sample: [{"database": "app", "table": "dbops_schema_history", "version": "9",
            "description": "add ten tables", "installed_on": "2026-11-20T03:00:00+00:00",
            "applied_count": 9, "failed_count": 0}]
inspected_databases:
  description: Databases whose tables were inspected.
  returned: always
  type: list
  elements: str
skipped_databases:
  description: Databases that could not be inspected, with the reason.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.dbops.datastores.plugins.module_utils import (
    _health,
    _pg_health,
    _pg_health_checks,
    _postgres,
    _query_text,
)
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _postgres.pg_argument_spec()
    argument_spec.update(
        databases={"type": "list", "elements": "str"},
        max_tables={"type": "int", "default": 20},
        statements_top={"type": "int", "default": 10},
        migration_table={"type": "str", "default": "dbops_schema_history"},
        thresholds=_health.threshold_argument_spec(_pg_health_checks.PG_THRESHOLDS),
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        thresholds = _health.merge_thresholds(_pg_health_checks.PG_THRESHOLDS, params["thresholds"])
        _postgres.require_driver()
        facts = _pg_health.gather(
            lambda db: _postgres.connect(params, database=db, autocommit=True),
            params["databases"], thresholds, params["migration_table"] or None, params["statements_top"],
        )
        _query_text.shape_pg_facts(facts)  # query text leaves the module as its shape, no literals
        report = _pg_health_checks.evaluate_pg(facts, thresholds)
    except DbopsError as exc:
        fail_from_error(module, exc)
    except _postgres.psycopg2.Error as exc:
        fail_from_error(module, DbopsError(f"read health facts from PostgreSQL: {str(exc).strip()}"))
    module.exit_json(changed=False, thresholds=thresholds, **report,
                     **_pg_health.summarize(facts, params["max_tables"]))


if __name__ == "__main__":
    main()
