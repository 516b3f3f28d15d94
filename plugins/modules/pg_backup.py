#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Back up a PostgreSQL database with pg_dump into a backup root
version_added: 0.1.0
description:
  - Dumps one database with C(pg_dump) (custom, directory with parallel O(jobs), or plain format),
    optionally with the roles and tablespaces from C(pg_dumpall --globals-only).
  - The backup is written into C(<root>/<id>.partial/) and renamed to C(<root>/<id>/) only after its
    manifest (engine, database, format, tool and server versions, every file with size and sha256,
    exact row count per table, start, end, duration) has been written last and atomically. A failed
    backup leaves nothing behind; a killed one leaves a C(.partial) directory that never looks
    complete and that M(dbops.datastores.backup_retention) removes once it is stale.
  - pg_dump runs on a snapshot exported by the module's own connection, so the row counts in the
    manifest are exactly the rows in the dump. A dump whose stderr reports an error, or that leaves
    an empty archive, fails even when pg_dump exits 0.
  - The password reaches pg_dump through a temporary 0600 passfile, never the command line. Files
    are created 0600 and directories 0700.
  - Every run takes a new backup (and reports changed) unless O(min_interval) finds a recent one.
options:
  root:
    description:
      - The backup root directory. It must exist and be writable.
    type: path
    required: true
  database:
    description:
      - The database to dump.
    type: str
    required: true
  format:
    description:
      - C(pg_dump) output format. V(custom) is one compressed archive; V(directory) allows O(jobs);
        V(plain) is an SQL script (gzip-compressed when O(compression) is above 0).
    type: str
    choices: [custom, directory, plain]
    default: custom
  jobs:
    description:
      - Parallel dump jobs (format V(directory) only).
    type: int
    default: 1
  compression:
    description:
      - Compression level 0-9 passed to C(pg_dump --compress); pg_dump's default when unset.
    type: int
  globals:
    description:
      - Also dump roles and tablespaces with C(pg_dumpall --globals-only) into C(globals.sql).
      - Needs a login allowed to read C(pg_authid) (superuser), or the dump fails.
    type: bool
    default: false
  bin_dir:
    description:
      - Directory holding C(pg_dump) and C(pg_dumpall); only this directory is searched.
      - By default the tools are looked for in the directories of the environment variable
        C(DBOPS_PG_BIN_DIRS) (separated by C(:)), C(/usr/lib/postgresql/<major>/bin),
        C(/usr/pgsql-<major>/bin) and PATH. The tools of the server's major are used when found, else
        the newest ones; tools older than the server are never used (the backup fails and says which
        were found).
      - The manifest records the C(pg_dump) version; restoring needs a C(pg_restore) at least as new.
    type: path
  min_interval:
    description:
      - Do not take a backup when a complete backup of this database younger than this exists
        (for example V(20h)); the task then reports that backup and C(changed=false).
      - Units C(s), C(m), C(h), C(d), C(w), combinable (V(1d12h)).
    type: str
  from:
    description:
      - Which node of a replicated cluster takes this backup. The server is asked (C(pg_is_in_recovery())),
        not the inventory.
      - V(primary) (the default) backs up only on the primary, V(standby) only on a standby (every
        standby given the job), V(prefer_standby) on a standby, and on the primary only while no
        standby is connected to it (C(pg_stat_replication)); V(any) on whichever node it runs on.
      - On a node the option does not name, the task fails and writes nothing (C(dbops-backup) skips
        the job there and logs why).
      - A dump on a standby can be cancelled by a recovery conflict; the error then says so. The
        C(dbops.datastores.postgresql) role sets C(hot_standby_feedback = on) on standbys to prevent it.
      - The manifest's C(source) records the node (host, cluster name, role), the replay LSN the dump
        saw on a standby (the WAL position on the primary) and this option.
    type: str
    choices: [primary, standby, prefer_standby, any]
    default: primary
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Nightly backup of the app database
  dbops.datastores.pg_backup:
    root: /var/backups/dbops
    database: app
    login_user: backup
    login_password: "{{ vault_pg_backup_password }}"

- name: Parallel directory-format dump with roles, at most once a day
  dbops.datastores.pg_backup:
    root: /var/backups/dbops
    database: app
    format: directory
    jobs: 4
    compression: 6
    globals: true
    min_interval: 20h
    login_unix_socket: /var/run/postgresql
  register: backup

- name: Show the new backup
  ansible.builtin.debug:
    msg: "{{ backup.backup.id }}: {{ backup.backup.counts }}"

- name: Back up from a standby (fails on the primary, writes nothing there)
  dbops.datastores.pg_backup:
    root: /var/backups/dbops
    database: app
    from: standby
    login_unix_socket: /var/run/postgresql
"""

RETURN = r"""
backup:
  description: The backup taken (or, when skipped by O(min_interval), the recent one found).
  returned: success, not in check mode
  type: dict
  sample:
    id: pg-app-20261124T020000Z
    path: /var/backups/dbops/pg-app-20261124T020000Z
    engine: postgresql
    database: app
    format: custom
    size: 73400320
    duration_s: 41.2
    counts: {"public.messages": 120332, "public.service_metrics": 5012}
    verification: unverified
plan:
  description: What the backup runs (commands without secrets).
  returned: when a backup is (or would be) taken
  type: dict
  sample:
    engine: postgresql
    database: app
    format: custom
    commands:
      - pg_dump --format=custom --snapshot=<exported> --file=<root>/<id>.partial/database.dump app
skipped_reason:
  description: Why no backup was taken.
  returned: when O(min_interval) found a recent backup
  type: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops, _pg_backup, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _postgres.pg_argument_spec()
    argument_spec.update(
        root={"type": "path", "required": True},
        **_pg_backup.backup_option_spec(),
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    options = {k: p[k] for k in _pg_backup.backup_option_spec() if k != "min_interval"}
    try:
        result = _backup_ops.backup("postgresql", p, p["root"], options, min_interval=p["min_interval"],
                                    check=module.check_mode)
    except DbopsError as exc:
        fail_from_error(module, exc)
    if module._diff:
        after = result.get("backup", {}).get("id") or "(new backup)"
        result["diff"] = {"before": {"backup": None} if result["changed"] else {"backup": after},
                          "after": {"backup": after}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
