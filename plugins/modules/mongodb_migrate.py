#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_migrate
short_description: Apply versioned MongoDB data and command migrations
version_added: 0.1.0
description:
  - Brings a database to a target version by running migration files from O(path) in version
    order, with the same semantics as M(dbops.datastores.pg_migrate) (the version parsing, file
    discovery, checksums and planning are shared).
  - Files are named C(V<version>__<description>.yml) (or C(.yaml), C(.json)); versions compare
    numerically by parts (C(1.10) > C(1.9), C(009) == C(9)). C(U<version>__<description>.yml) is
    an undo file and C(R__<description>.yml) a repeatable migration, re-run when its checksum changes.
  - A file is a mapping with C(up) (a list of C(runCommand) documents such as C(insert), C(update),
    C(delete), C(aggregate) with C($out)/C($merge), C(createIndexes), C(collMod),
    C(renameCollection)), an optional C(down) list that undoes it, and optional
    C(transaction=true). MongoDB Extended JSON (C($date), C($oid), ...) is understood.
  - Each applied step is recorded in O(history_collection) with its checksum, who ran it, when,
    how long it took and whether it succeeded. Checksums of applied migrations are validated.
  - A lock document (owner, heartbeat, expiry) in O(lock_collection) keeps two runners from applying
    the same migration. The owner renews it while it runs; a killed runner's lock is taken over once
    it has not been renewed for O(lock_ttl) seconds.
  - A migration with C(transaction=true) runs with its history document in one transaction (replica
    set or sharded cluster). Without a transaction a failed migration records how many of its
    commands completed; the next run checks that those commands are unchanged and resumes after them.
  - In check mode the module reads only and returns the ordered plan with every command.
options:
  database:
    description: Database the migrations run in (commands run with C(runCommand) on it).
    type: str
    required: true
    aliases: [db]
  path:
    description:
      - Directory with the migration files on the managed host (searched recursively).
      - One of O(path) and O(src) is required.
    type: path
  src:
    description:
      - Directory with the migration files on the controller, read by the action plugin with the
        same rules as O(path) and sent with the module's arguments in one transfer, whatever the
        number of files. Nothing is copied to the managed host.
    type: path
  files:
    description:
      - Set by the action plugin from O(src) (the base64-encoded files by relative name); do not set
        it yourself.
    type: dict
  target:
    description:
      - Version to bring the database to; C(latest) (the default) is the highest file version.
      - A target below the current version runs the undo (C(down) or C(U) file) of each version
        above it, highest first, and needs O(allow_downgrade=true).
    type: str
    default: latest
  allow_downgrade:
    description: Allow undoing applied migrations when O(target) is below the current version.
    type: bool
    default: false
  out_of_order:
    description: Apply pending versions that are lower than the highest applied version.
    type: bool
    default: false
  validate_checksums:
    description: Fail when an applied migration's file has changed or disappeared.
    type: bool
    default: true
  baseline_version:
    description:
      - Adopt an existing database at this version on the first run. Versions up to it are
        recorded as applied without running.
    type: str
  placeholders:
    description:
      - Values substituted for C(${name}) in the string values of the commands, after the file is
        parsed. A string that is exactly C(${name}) takes the value with its type; inside a longer
        string the value is inserted as text. The checksum stays that of the file as written.
      - When set, a C(${name}) without a value fails the task before anything runs.
    type: dict
    default: {}
  repair:
    description:
      - Remove failed history documents before planning, so that a failed migration runs again
        from its first command (after the database was fixed by hand).
    type: bool
    default: false
  history_collection:
    description: Collection that records applied migrations.
    type: str
    default: dbops_schema_history
  lock_collection:
    description: Collection that holds the lock document.
    type: str
    default: dbops_migration_lock
  lock_ttl:
    description:
      - Seconds after the last heartbeat at which a lock counts as abandoned and may be taken over.
        The holder renews it every third of this.
    type: int
    default: 60
  lock_timeout:
    description: Seconds to wait for a lock held by another runner before failing.
    type: int
    default: 300
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
      - "C(verify) re-runs the verify checks of every applied version
        (C(V<version>__<description>.verify.yml): C(verify:) a list of
        C({command: {...}, expect: {field.path: value}})) and fails listing each check whose
        reply differs. It changes nothing and takes no lock."
      - During C(migrate) the verify checks of a migration run right after its commands, inside its
        transaction when it has one (a failing check rolls it back); after a non-transactional
        migration a failing check records it as failed, and the next run only verifies again.
    type: str
    choices: [migrate, verify]
    default: migrate
extends_documentation_fragment:
  - dbops.datastores.mongodb
  - dbops.datastores.attributes
requirements:
  - PyYAML on the managed host for C(.yml)/C(.yaml) files
notes:
  - Write commands of a migration without a transaction so that running the failed one again is
    safe (C(upsert), C($merge), C(ordered=false) with unique keys), because a command that failed part-way
    runs again in full when the migration resumes.
  - Runners compare lock expiry times with their own clocks; keep them in sync (NTP) and O(lock_ttl)
    well above any clock difference.
seealso:
  - module: dbops.datastores.mongodb_schema
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Apply pending MongoDB migrations
  dbops.datastores.mongodb_migrate:
    login_host: mongo1.example.com
    login_user: admin
    login_password: "{{ vault_mongo_admin_password }}"
    database: octopus_messenger
    src: migrations/mongodb  # on the controller, next to the playbook
  register: migrated

- name: Apply migrations that name the tenant database's archive collection
  dbops.datastores.mongodb_migrate:
    database: octopus_messenger
    path: /srv/app/migrations/mongodb
    placeholders:
      archive_collection: messages_archive_2026
      retention_days: 30

- name: Show the plan without running it
  dbops.datastores.mongodb_migrate:
    database: octopus_messenger
    path: /srv/app/migrations/mongodb
  check_mode: true
  register: migration_plan

- name: Roll back to version 1
  dbops.datastores.mongodb_migrate:
    database: octopus_messenger
    path: /srv/app/migrations/mongodb
    target: "1"
    allow_downgrade: true
"""

RETURN = r"""
version_before:
  description: Highest applied version before the run (null for a database without migrations).
  returned: always
  type: str
  sample: "1"
version:
  description: Highest applied version after the run (in check mode, after the plan would run).
  returned: always
  type: str
  sample: "2"
applied:
  description:
    - Steps run, in order, with C(action), C(version), C(script), C(checksum), C(execution_ms).
    - With O(applied_detail=compact), a run of more than 100 steps lists only the first 50 and the
      last 50 (see RV(applied_count) and RV(applied_omitted)).
  returned: always
  type: list
  elements: dict
  sample:
    - action: apply
      version: "2"
      description: messages storage index
      script: V2__messages_storage_index.yml
      checksum: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
      execution_ms: 12
      transaction: false
      resumed_after: 0
applied_count:
  description: Number of steps that ran.
  returned: always
  type: int
  sample: 1
applied_omitted:
  description: Number of steps that ran but are left out of RV(applied) (O(applied_detail=compact)).
  returned: always
  type: int
  sample: 0
plan:
  description:
    - The ordered steps of the plan with the C(commands) of each. In check mode nothing ran.
    - C(resume_after) says how many commands of a failed migration already ran and are skipped.
    - Outside check mode the steps that ran are in RV(applied) (compact for big runs, see
      O(applied_detail)) and not repeated here.
  returned: in check mode, and when there is nothing to do
  type: list
  elements: dict
pending:
  description: Versioned migrations not applied after the run (above a lower O(target)).
  returned: always
  type: list
  elements: str
lock_owner:
  description: The owner written into the lock document by this run.
  returned: when migrations ran
  type: str
  sample: "deploy1:4242:9f86d081"
lock_taken_over_from:
  description: The previous owner of an expired lock this run took over.
  returned: when an expired lock was taken over
  type: dict
  sample: {owner: "deploy2:977:1c2b3a4d", heartbeat_at: "2026-11-24T21:00:00+00:00",
           expired_at: "2026-11-24T21:01:00+00:00"}
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations, _mongodb
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_migrate as migrate
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._migrate_module import MigrateModule
from ansible_collections.dbops.datastores.plugins.module_utils._module import fail_from_error


def main() -> None:
    argument_spec = _mongodb.mongodb_argument_spec()
    argument_spec.update(
        database={"type": "str", "required": True, "aliases": ["db"]},
        path={"type": "path"},
        src={"type": "path"},
        files={"type": "dict"},
        target={"type": "str", "default": "latest"},
        allow_downgrade={"type": "bool", "default": False},
        out_of_order={"type": "bool", "default": False},
        validate_checksums={"type": "bool", "default": True},
        baseline_version={"type": "str"},
        placeholders={"type": "dict", "default": {}},
        repair={"type": "bool", "default": False},
        history_collection={"type": "str", "default": "dbops_schema_history"},
        lock_collection={"type": "str", "default": "dbops_migration_lock"},
        lock_ttl={"type": "int", "default": 60},
        lock_timeout={"type": "int", "default": 300},
        mode={"type": "str", "default": "migrate", "choices": ["migrate", "verify"]},
        applied_detail=_migrations.applied_detail_option(),
    )
    module = MigrateModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("path", "src")], mutually_exclusive=[("path", "src")])
    settings = migrate.settings_from_params(module.params)
    _migrations.shipped_summary(module.params)
    try:
        client = _mongodb.connect(module.params)
    except DbopsError as exc:
        fail_from_error(module, exc, changed=False)
    errors = (_mongodb.pymongo.errors.PyMongoError,)
    try:
        result = migrate.migrate(client, settings, check_mode=module.check_mode, error_types=errors,
                                 duplicate_key_error=_mongodb.pymongo.errors.DuplicateKeyError,
                                 describe_error=_mongodb.error_text)
    except _mongodb.pymongo.errors.PyMongoError as exc:
        fail_from_error(module, DbopsError(f"migrate {settings.database}: {_mongodb.error_text(exc)}"),
                        changed=False)
    except DbopsError as exc:
        exc.details.setdefault("changed", False)
        fail_from_error(module, exc)
    finally:
        client.close()
    if module._diff:
        result["diff"] = {"before": {"version": result["version_before"]},
                          "after": {"version": result["version"]}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
