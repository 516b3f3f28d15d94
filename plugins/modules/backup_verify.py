#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Prove that a backup is intact and restorable
version_added: 0.1.0
description:
  - Re-reads every file of a backup (PostgreSQL or MongoDB) and compares size and sha256 with its
    manifest. Any missing, changed or unlisted file fails the task.
  - With O(restore_test=true) it then restores the backup into a scratch database (named after the
    backup id; refused if it already exists), compares the row/document count of every table or
    collection with the manifest, drops the scratch database and reports the time the restore took
    (the measured recovery time, RTO).
  - The result (time, kind, result, problems, RTO) is recorded in the catalog next to the backup, where
    M(dbops.datastores.backup_info) reports it. Failed verifications are recorded too.
  - In check mode the files are checked (read-only) and the restore test is only planned; nothing is
    recorded.
options:
  root:
    description:
      - The backup root directory.
    type: path
    required: true
  backup:
    description:
      - Id of the backup to verify, or V(latest) for the newest backup matching O(engine) and
        O(database).
    type: str
    default: latest
  engine:
    description:
      - With O(backup=latest), only consider backups of this engine.
    type: str
    choices: [postgresql, mongodb]
  database:
    description:
      - With O(backup=latest), only consider backups of this database.
    type: str
  restore_test:
    description:
      - Restore into a scratch database and compare counts with the manifest.
      - Needs O(postgres) or O(mongodb) connection options with the right to create and drop databases.
    type: bool
    default: false
  scratch_database:
    description:
      - Name of the scratch database. Default C(dbops_verify_<backup id>). It must not exist.
    type: str
  jobs:
    description:
      - Parallel restore jobs for PostgreSQL custom and directory-format backups.
    type: int
    default: 1
  min_interval:
    description:
      - Do nothing (C(changed=false)) when the backup already passed a verification of the same
        kind - or a restore test - within this duration, for example V(7d).
    type: str
extends_documentation_fragment:
  - dbops.datastores.backup_connections
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Check the checksums of the newest backup of app
  dbops.datastores.backup_verify:
    root: /var/backups/dbops
    engine: postgresql
    database: app

- name: Weekly restore drill of the newest MongoDB backup
  dbops.datastores.backup_verify:
    root: /var/backups/dbops
    engine: mongodb
    database: messages
    restore_test: true
    min_interval: 6d
    mongodb:
      login_user: backup
      login_password: "{{ vault_mongo_backup_password }}"
  register: drill

- name: Restore drill of one PostgreSQL backup
  dbops.datastores.backup_verify:
    root: /var/backups/dbops
    backup: pg-app-20261124T020000Z
    restore_test: true
    jobs: 2
    postgres:
      login_unix_socket: /var/run/postgresql
"""

RETURN = r"""
ok:
  description: Whether the backup passed (the task fails otherwise).
  returned: always
  type: bool
backup:
  description: The backup verified (see M(dbops.datastores.backup_info) for the fields).
  returned: when a backup was found
  type: dict
verification:
  description: The verification record written to the catalog.
  returned: when a backup was found
  type: dict
  sample:
    time: "2026-11-24T03:00:00.000000Z"
    kind: restore
    ok: true
    files_ok: true
    counts_ok: true
    problems: []
    scratch_database: dbops_verify_pg_app_20261124t020000z
    rto_s: 38.4
    duration_s: 40.1
skipped_reason:
  description: Why nothing was verified.
  returned: when O(min_interval) found a recent verification
  type: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops, _mongodb, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    module = DbopsModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "backup": {"type": "str", "default": "latest"},
            "engine": {"type": "str", "choices": ["postgresql", "mongodb"]},
            "database": {"type": "str"},
            "restore_test": {"type": "bool", "default": False},
            "scratch_database": {"type": "str"},
            "jobs": {"type": "int", "default": 1},
            "min_interval": {"type": "str"},
            "postgres": {"type": "dict", "options": _postgres.pg_argument_spec(), "apply_defaults": True},
            "mongodb": {"type": "dict", "options": _mongodb.mongodb_argument_spec(), "apply_defaults": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = _backup_ops.verify(
            p["root"], backup_id=p["backup"], engine=p["engine"], database=p["database"],
            restore_test=p["restore_test"],
            connections={"postgresql": p["postgres"], "mongodb": p["mongodb"]},
            scratch_database=p["scratch_database"], jobs=p["jobs"], min_interval=p["min_interval"],
            check=module.check_mode)
    except DbopsError as exc:
        exc.details.setdefault("ok", False)
        fail_from_error(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
