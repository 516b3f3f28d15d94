#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_migrate
short_description: Apply versioned SQL migrations to a PostgreSQL database
version_added: 0.1.0
description:
  - Brings the database named by O(login_db) to a target version by running the SQL files in
    O(path), and records each one in a history table.
  - "File names: C(V<version>__<description>.sql) (versioned), C(U<version>__<description>.sql)
    (undo of that version), C(R__<description>.sql) (repeatable, re-applied whenever its content
    changes, after the versioned ones). Versions compare numerically part by part: C(1.10) is
    after C(1.9), C(009) is the same version as C(9). Other extensions are ignored; a C(.sql) file
    that does not follow these names, two files with the same version, or an undo file without
    its versioned file fail the task before anything runs."
  - Each migration runs in its own transaction together with its history row, so a failed or
    interrupted migration leaves the database exactly as before it. Consecutive transactional
    migrations travel several per message (at most 50, 1 MiB), each still its own transaction;
    after a failure the ones before it stay applied and recorded. A script whose first line is
    C(-- dbops:transaction=off) runs statement by statement in autocommit instead (needed for
    C(CREATE INDEX CONCURRENTLY)); if it fails it is recorded as failed and blocks later runs
    until O(repair=true).
  - A session advisory lock, held on a separate idle connection, keeps concurrent runners (several
    hosts, overlapping schedules) from applying the same migration; a runner waits at most
    O(lock_timeout) seconds, then fails naming the session that holds the lock.
  - Applied migrations are checked against their files (sha256 of the file bytes); a changed file
    fails the task unless O(validate_checksums=false).
  - "Verify scripts: C(V<version>__<description>.verify.sql) checks the migration with the same
    version and fails (raises an error, for example C(DO $$BEGIN ASSERT ...; END$$)) when the
    check does not hold. It runs right after its migration inside the same transaction, so a
    failing verify rolls the migration back; after a C(transaction=off) migration it runs once the
    last statement is done and a failure leaves the migration recorded as failed. A verify script
    whose version has no C(V) file fails the task before anything runs. O(mode=verify) re-runs the
    verify scripts of every applied version and changes nothing."
  - In check mode the task returns the ordered plan with each script's SQL and changes nothing,
    not even the history table. See the migrations guide (docs/migrations.md) for the details.
options:
  path:
    description:
      - Directory with the migration files on the managed host, searched recursively (hidden files
        are skipped).
      - One of O(path) and O(src) is required.
    type: path
  src:
    description:
      - Directory with the migration files on the controller (relative paths are searched like
        those of M(ansible.builtin.template)), read by the action plugin with the same rules as
        O(path) and sent with the module's arguments in one transfer, whatever the number of files.
      - Nothing is copied to the managed host; a file deleted on the controller is gone for the
        module at once.
    type: path
  files:
    description:
      - Set by the action plugin from O(src) (the base64-encoded files by relative name); do not set
        it yourself.
    type: dict
  target:
    description:
      - Version to migrate to. C(latest) applies every versioned migration.
      - A version lower than the current one undoes the later migrations with their C(U) scripts,
        newest first, only with O(allow_downgrade=true); the task fails when an undo script is
        missing. C(0) undoes every migration.
      - Quote versions in YAML (C("1.10")); unquoted, C(1.10) is the number 1.1.
    type: str
    default: latest
  allow_downgrade:
    description:
      - Allow O(target) to be lower than the current version.
    type: bool
    default: false
  out_of_order:
    description:
      - Apply pending migrations whose version is lower than the highest applied one (for example
        a hotfix branch merged late). Without it such migrations fail the task.
    type: bool
    default: false
  validate_checksums:
    description:
      - Fail when the file of an applied migration changed since it was applied, or is gone.
    type: bool
    default: true
  baseline_version:
    description:
      - Adopt an existing database. When the history table is empty, record this version as the
        baseline; migrations up to it are treated as applied and never run.
      - Ignored once migrations have been recorded; a different recorded baseline is an error.
    type: str
  placeholders:
    description:
      - Values substituted in the scripts before they run. The checksum stays that of the file as
        written.
      - "C(${name:literal}) inserts the value as a quoted SQL string, C(${name:identifier}) as a
        quoted name. A bare C(${name}) inserts a plain word or number only (letters, digits, the
        characters C(_.:@+) and single inner dashes); any other value fails the task unless the name
        is listed in O(raw_placeholders)."
      - When set, a C(${name}) without a value fails the task before anything runs.
    type: dict
    default: {}
  secret_placeholders:
    description:
      - Placeholders whose values are secrets (passwords), used like O(placeholders) but never
        logged or returned; the check-mode plan shows them as C(********).
    type: dict
    default: {}
  raw_placeholders:
    description:
      - Names of placeholders inserted as they are, unquoted, whatever their value (C(${name}) or
        C(${name:raw})). Only for values you control completely, such as SQL fragments.
    type: list
    elements: str
    default: []
  history_schema:
    description:
      - Schema of the history table (created if missing).
    type: str
    default: public
  history_table:
    description:
      - Name of the history table, created on first use.
    type: str
    default: dbops_schema_history
  lock_timeout:
    description:
      - Seconds to wait for another runner's migration lock before failing. C(0) fails at once.
    type: float
    default: 60
  statement_timeout:
    description:
      - PostgreSQL C(statement_timeout) for the migration session (for example C(15min)); each
        statement running longer is cancelled and its migration rolled back.
      - Unset keeps the server's setting.
    type: str
  session_lock_timeout:
    description:
      - PostgreSQL C(lock_timeout) for the migration session (for example C(10s)), so a migration
        waiting for a table lock held by the application fails instead of queueing every other
        query on that table behind it.
      - Unset keeps the server's setting.
    type: str
  lock_retries:
    description:
      - How many times a transactional migration that failed because a lock was not granted within
        O(session_lock_timeout) (SQLSTATE C(55P03)) is retried; it was rolled back, so a retry
        starts from a clean state. Any other error is never retried.
    type: int
    default: 0
  lock_retry_delay:
    description:
      - Seconds before the first retry (O(lock_retries)); each later retry waits twice as long as
        the one before, at most ten times this value.
    type: float
    default: 5
  applied_detail:
    description:
      - How much of a big run RV(applied) lists. With C(compact), a run of more than 100 steps
        lists the first 50 and the last 50 steps; RV(applied_count) counts every step and
        RV(applied_omitted) the ones left out (the history has them all).
      - C(full) lists every step.
    type: str
    choices: [compact, full]
    default: compact
  mode:
    description:
      - C(migrate) brings the database to O(target).
      - C(verify) re-runs the verify script of every applied version, each in a read-only
        transaction that is rolled back, and fails listing every verify script that fails (the
        live schema drifted, for example an index dropped by hand). It never changes anything and
        takes no migration lock.
    type: str
    choices: [migrate, verify]
    default: migrate
  repair:
    description:
      - Remove the history rows of failed migrations (from C(transaction=off) scripts that failed
        or were interrupted), after the database has been fixed by hand, then continue.
    type: bool
    default: false
  require_server_version:
    description:
      - Fail before any change when the server is older than this version (C(15), C(14.2)).
    type: str
  require_extensions:
    description:
      - Fail before any change when one of these extensions is not available on the server
        (C(pg_available_extensions)).
    type: list
    elements: str
    default: []
  session_role:
    description:
      - Role to C(SET ROLE) to after login, so that the objects the migrations create (and the
        history table) belong to it, typically the database owner the application connects as,
        while O(login_user) is a superuser logging in through the local socket.
      - The login must be a member of this role. The history keeps the login in C(installed_by).
    type: str
  history_readers:
    description:
      - Roles granted C(SELECT) on the history table when it is created, so that monitoring
        (M(dbops.datastores.pg_health_info) as a C(pg_monitor) member) can report the schema version.
      - An empty list grants nothing. Existing history tables are not changed.
    type: list
    elements: str
    default: [pg_monitor]
notes:
  - The login needs the privileges the scripts need, plus CREATE on the history schema on first
    use. Scripts run with the session's C(search_path); settings changed by a script (C(SET)
    without C(LOCAL)) stay in effect for the scripts after it in the same run.
  - Undo and repeatable scripts are recorded in the history too; the history keeps every run.
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Migrate the messenger database to the latest version
  dbops.datastores.pg_migrate:
    login_host: db1.example.com
    login_user: migrator
    login_password: "{{ vault_pg_migrator_password }}"
    login_db: octopus_messenger
    path: /opt/octopus/migrations
    require_server_version: "14"
    require_extensions: [pgcrypto]
    statement_timeout: 15min
    session_lock_timeout: 10s
  register: migration

- name: Migrate as the database owner while logging in as postgres through the socket
  dbops.datastores.pg_migrate:
    login_unix_socket: /var/run/postgresql
    login_user: postgres
    login_db: octopus_messenger
    session_role: octopus_user
    path: /opt/octopus/migrations
  become: true
  become_user: postgres

- name: Check that every applied migration still holds (dropped index, missing column...)
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    path: /opt/octopus/migrations
    mode: verify

- name: Retry a migration twice when a table lock is not granted within 10 s
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    path: /opt/octopus/migrations
    session_lock_timeout: 10s
    lock_retries: 2
    lock_retry_delay: 30

- name: Preview what would run (nothing changes)
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    path: /opt/octopus/migrations
  check_mode: true
  register: preview

- name: Apply the migrations kept next to the playbook (read on the controller, nothing copied)
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    src: migrations/octopus

- name: Roll back migration 009 with its undo script
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    path: /opt/octopus/migrations
    target: "8"
    allow_downgrade: true

- name: Adopt a database whose schema was created by hand up to version 8
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    path: /opt/octopus/migrations
    baseline_version: "8"
    placeholders:
      app_role: octopus_app

- name: Clear a failed non-transactional migration after fixing the database
  dbops.datastores.pg_migrate:
    login_db: octopus_messenger
    path: /opt/octopus/migrations
    repair: true
"""

RETURN = r"""
version_before:
  description: Schema version before the task (null for a database without migrations).
  returned: always
  type: str
  sample: "8"
version:
  description: Schema version after the task (in check mode, the version it would reach).
  returned: always
  type: str
  sample: "9"
applied:
  description:
    - Steps that ran, in order, with their wall time.
    - With O(applied_detail=compact), a run of more than 100 steps lists only the first 50 and the
      last 50 (see RV(applied_count) and RV(applied_omitted); the history table has every step).
  returned: always
  type: list
  elements: dict
  sample:
    - action: apply
      version: "009"
      description: add service optimization tables
      script: V009__add_service_optimization_tables.sql
      checksum: 3b1f0c...
      transaction: true
      execution_ms: 84
pending:
  description: Versioned migrations not applied once the task is done (above O(target)).
    In check mode the ones the plan would apply are not listed here but in RV(plan).
  returned: always
  type: list
  elements: str
  sample: [V010__archive_partitions.sql]
applied_count:
  description: Number of steps that ran.
  returned: success
  type: int
  sample: 1
applied_omitted:
  description: Number of steps that ran but are left out of RV(applied) (O(applied_detail=compact)).
  returned: success
  type: int
  sample: 0
plan:
  description:
    - Ordered steps that would run (C(repair), C(baseline), C(undo), C(apply), C(repeatable)), each
      script step with C(sql), the SQL it would run (placeholders substituted).
    - Outside check mode the steps that ran are in RV(applied).
  returned: in check mode, and when there is nothing to do
  type: list
  elements: dict
  sample:
    - action: apply
      version: "009"
      description: add service optimization tables
      script: V009__add_service_optimization_tables.sql
      checksum: 3b1f0c...
      transaction: true
      sql: "CREATE TABLE service_instances (...);"
history_table:
  description: Schema-qualified name of the history table.
  returned: always
  type: str
  sample: public.dbops_schema_history
database:
  description: The database migrated.
  returned: always
  type: str
  sample: octopus_messenger
server_version:
  description: The server's version.
  returned: always
  type: str
  sample: "15.18 (Debian 15.18-0+deb12u1)"
lock_wait_s:
  description: Seconds spent waiting for another runner's lock.
  returned: always
  type: float
  sample: 0.0
verified:
  description: With O(mode=verify), each verify script run, with C(ok) and the C(error) when it failed.
  returned: when O(mode=verify)
  type: list
  elements: dict
  sample:
    - version: "2"
      script: V2__index_messages.sql
      verify: V2__index_messages.verify.sql
      ok: true
unverified:
  description: With O(mode=verify), applied migrations that have no verify script.
  returned: when O(mode=verify)
  type: list
  elements: str
  sample: [V1__create_messages.sql]
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations, _pg_migrate, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._migrate_module import MigrateModule
from ansible_collections.dbops.datastores.plugins.module_utils._module import fail_from_error


def argument_spec() -> dict:
    spec = _postgres.pg_argument_spec()
    spec.update(
        path={"type": "path"},
        src={"type": "path"},
        files={"type": "dict"},
        target={"type": "str", "default": "latest"},
        allow_downgrade={"type": "bool", "default": False},
        out_of_order={"type": "bool", "default": False},
        validate_checksums={"type": "bool", "default": True},
        baseline_version={"type": "str"},
        placeholders={"type": "dict", "default": {}},
        secret_placeholders={"type": "dict", "default": {}, "no_log": True},
        raw_placeholders={"type": "list", "elements": "str", "default": [], "no_log": False},
        history_schema={"type": "str", "default": "public"},
        history_table={"type": "str", "default": _pg_migrate.DEFAULT_HISTORY_TABLE},
        lock_timeout={"type": "float", "default": 60},
        statement_timeout={"type": "str"},
        session_lock_timeout={"type": "str"},
        repair={"type": "bool", "default": False},
        require_server_version={"type": "str"},
        require_extensions={"type": "list", "elements": "str", "default": []},
        session_role={"type": "str"},
        history_readers={"type": "list", "elements": "str", "default": ["pg_monitor"]},
        lock_retries={"type": "int", "default": 0},
        lock_retry_delay={"type": "float", "default": 5},
        mode={"type": "str", "default": "migrate", "choices": list(_pg_migrate.MODES)},
        applied_detail=_migrations.applied_detail_option(),
    )
    return spec


def main() -> None:
    module = MigrateModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("path", "src")], mutually_exclusive=[("path", "src")])
    module.no_log_values.update(_pg_migrate.secret_forms(module.params))  # quoted forms in error messages
    try:
        result = _pg_migrate.migrate(module.params, module.check_mode)
    except DbopsError as exc:
        fail_from_error(module, exc)
    if module._diff:
        steps = result["plan"] if module.check_mode else result["applied"]
        result["diff"] = _pg_migrate.diff(result["version_before"], result["version"], steps,
                                          0 if module.check_mode else result["applied_omitted"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
