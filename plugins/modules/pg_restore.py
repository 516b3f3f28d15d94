#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a PostgreSQL backup from a backup root into a database
version_added: 0.1.0
description:
  - Verifies every file of the backup against its manifest (size and sha256) first and refuses a
    backup that does not match. Then restores it with C(pg_restore) (custom and directory formats,
    parallel with O(jobs)) or C(psql) (plain format) into O(database), and compares the row count of
    every table with the manifest.
  - The target database is created when missing and O(create=true). An existing empty database is
    restored into. An existing database that already holds tables, views or sequences is only
    replaced with O(clean=true) (C(pg_restore --clean --if-exists)); otherwise nothing is done and
    the task reports C(changed=false) with RV(skipped_reason), so a restore play can be re-run.
  - When the restore fails (tool error, row counts that differ from the manifest) into a database this
    task created, that database is dropped before the task fails (C(database_dropped=true) in the
    failed result), so a re-run restores again; when the drop fails too, the message says the
    database is incomplete and must be dropped by hand.
  - Roles from C(globals.sql) are not applied; run it with C(psql) first when restoring to a new
    cluster.
options:
  root:
    description: The backup root directory.
    type: path
    required: true
  backup:
    description:
      - Id of the backup, or V(latest) for the newest PostgreSQL backup of O(source_database).
    type: str
    default: latest
  source_database:
    description:
      - With O(backup=latest), the database whose newest backup is restored. Defaults to O(database).
      - With a backup id, when set, it must be that backup's database (a mismatch is refused).
    type: str
  database:
    description:
      - The database to restore into. Defaults to the backup's own database.
    type: str
  create:
    description: Create the target database (from C(template0)) when it does not exist.
    type: bool
    default: false
  clean:
    description:
      - Drop the backup's objects in the target database before restoring them (custom and
        directory formats).
    type: bool
    default: false
  jobs:
    description: Parallel C(pg_restore) jobs (custom and directory formats).
    type: int
    default: 1
  no_owner:
    description: Do not restore object ownership (C(--no-owner)).
    type: bool
    default: false
  no_privileges:
    description: Do not restore privileges (C(--no-privileges)).
    type: bool
    default: false
  bin_dir:
    description:
      - Directory holding C(pg_restore) and C(psql); only this directory is searched.
      - By default they are looked for like C(pg_backup) looks for C(pg_dump) (C(DBOPS_PG_BIN_DIRS),
        C(/usr/lib/postgresql/<major>/bin), C(/usr/pgsql-<major>/bin), PATH).
      - C(pg_restore) must be at least as new as the C(pg_dump) recorded in the backup's manifest;
        otherwise the restore is refused before anything is created. Among those, the one of the
        target server's major is preferred, else the newest.
      - Tools of PostgreSQL 17 and newer send C(SET transaction_timeout), which servers before 17
        reject; for such a target the archive is turned into SQL by C(pg_restore --file=-) and run by
        C(psql) without that setting, in one session (O(jobs) does not apply).
    type: path
extends_documentation_fragment:
  - dbops.datastores.offhost
  - dbops.datastores.offhost.restore
  - dbops.datastores.postgres
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Restore the newest backup of app into a new database app_restored
  dbops.datastores.pg_restore:
    root: /var/backups/dbops
    source_database: app
    database: app_restored
    create: true
    jobs: 4

- name: Put a known backup back into app, replacing its objects
  dbops.datastores.pg_restore:
    root: /var/backups/dbops
    backup: pg-app-20261124T020000Z
    clean: true
    login_unix_socket: /var/run/postgresql
"""

RETURN = r"""
offhost:
  description:
    - With O(source=offhost) - the copy used (C(id), C(snapshot), C(copy)), and C(fetched) (whether
      it was brought back into the backup root by this run).
  returned: when O(source=offhost)
  type: dict
backup:
  description: The backup restored (see M(dbops.datastores.backup_info) for the fields).
  returned: success
  type: dict
database:
  description: The target database.
  returned: success
  type: str
restored:
  description: Whether a restore ran.
  returned: success
  type: bool
commands:
  description: What runs (or would run in check mode).
  returned: when a restore runs or would run
  type: list
  elements: str
  sample:
    - CREATE DATABASE app_restored TEMPLATE template0
    - pg_restore --exit-on-error --dbname=app_restored --jobs=4 /var/backups/dbops/pg-app-1/database.dump
counts:
  description: Row counts per table in the target after the restore.
  returned: when restored
  type: dict
duration_s:
  description: Seconds the restore took.
  returned: when restored
  type: float
skipped_reason:
  description: Why nothing was restored.
  returned: when the target is not empty and O(clean=false)
  type: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import (
    _backup_offhost,
    _postgres,
)
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _postgres.pg_argument_spec()
    argument_spec.update(
        root={"type": "path", "required": True},
        backup={"type": "str", "default": "latest"},
        source_database={"type": "str"},
        database={"type": "str"},
        create={"type": "bool", "default": False},
        clean={"type": "bool", "default": False},
        jobs={"type": "int", "default": 1},
        no_owner={"type": "bool", "default": False},
        no_privileges={"type": "bool", "default": False},
        bin_dir={"type": "path"},
    )
    argument_spec.update(_backup_offhost.restore_option_spec())
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True,
                         required_if=_backup_offhost.RESTORE_REQUIRED_IF)
    p = module.params
    options = {k: p[k] for k in ("backup", "database", "create", "clean", "jobs", "no_owner", "no_privileges",
                                 "bin_dir")}
    options["source_database"] = p["source_database"] or (p["database"] if p["backup"] == "latest" else None)
    try:
        result = _backup_offhost.restore_from_source("postgresql", p, p["root"], options,
                                                     check=module.check_mode)
    except DbopsError as exc:
        fail_from_error(module, exc)
    if module._diff:
        result["diff"] = {"before": {"database": result["database"], "restored_from": None},
                          "after": {"database": result["database"],
                                    "restored_from": result["backup"]["id"] if result["changed"] else None}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
