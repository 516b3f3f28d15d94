#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pgbackrest_restore
short_description: Restore a pgBackRest stanza into a scratch directory or a stopped cluster's data directory
version_added: 0.2.0
description:
  - The guarded restore primitive behind point-in-time recovery. Runs C(pgbackrest restore) as the
    calling user, to O(target_time) (C(--type=time)) or to the end of the archived WAL.
  - Everything is checked before anything is written, and any refusal changes nothing. Refused - an
    unknown stanza, a repository pgBackRest cannot decrypt (wrong passphrase), a target time before
    the oldest restorable backup's end or after the newest archived WAL segment, a time without a
    time zone, a running postmaster in O(data_directory), and in O(mode=scratch) a directory that is
    not empty, overlaps a data directory named in the configuration (C(pgN-path)), or sits on a file
    system with less free space than the backup's size; in O(mode=replace) a directory that is not a
    data directory, one that holds another PostgreSQL major than the stanza's backups (C(PG_VERSION)),
    one that holds another system (the identifier in C(global/pg_control)) and is not one of the
    stanza's C(pgN-path) in the configuration (there a new or damaged cluster is what a recovery
    replaces), or a file system with less free space than the backup's size minus what the
    data directory and its tablespaces hold now (the least it grows by).
  - A scratch restore that fails removes what it wrote. The restored cluster is not started; recovery
    runs when it is (see M(dbops.datastores.pg_pitr_drill) for a restore that is started and checked).
options:
  data_directory:
    description: Where to restore.
    type: path
    required: true
  mode:
    description:
      - V(scratch) restores into an empty or absent directory, with C(archive_mode=off) so the copy
        never archives into the repository, and its tablespaces into C(<data_directory>.tablespaces)
        instead of their live locations.
      - V(replace) restores over the data directory of a STOPPED cluster (C(--delta) - only files that
        differ are rewritten). Use it for a real recovery, after stopping the cluster.
    type: str
    choices: [scratch, replace]
    default: scratch
  target_time:
    description:
      - The moment to recover to, ISO 8601 with a time zone (C(2026-11-30T14:05:00Z),
        C(2026-11-30 15:05:00+01:00)). The newest backup that ended before it is restored and WAL is
        replayed up to it. Absent - the newest backup and all archived WAL.
    type: str
  target_action:
    description: What the server does on reaching O(target_time) (PostgreSQL's C(recovery_target_action)).
    type: str
    choices: [promote, pause, shutdown]
    default: promote
extends_documentation_fragment:
  - dbops.datastores.pgbackrest
  - dbops.datastores.attributes
notes:
  - O(stanza) is required here.
  - Applying the same scratch restore again is refused (the directory is no longer empty), so the
    module always reports C(changed) when it restores.
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Restore yesterday 14:05 UTC into a scratch directory
  dbops.datastores.pgbackrest_restore:
    stanza: main
    data_directory: /var/lib/postgresql/drill/data
    target_time: "2026-11-29T14:05:00Z"
  become: true
  become_user: postgres

- name: Replace the stopped cluster's data directory (PITR)
  dbops.datastores.pgbackrest_restore:
    stanza: main
    mode: replace
    data_directory: /var/lib/postgresql/15/main
    target_time: "{{ pitr_target_time }}"
  become: true
  become_user: postgres
"""

RETURN = r"""
plan:
  description: What was (or in check mode would be) run, and why this backup.
  returned: always
  type: dict
  sample:
    stanza: main
    mode: scratch
    data_directory: /var/lib/postgresql/drill/data
    target_time: "2026-11-29T14:05:00Z"
    target_action: promote
    backup_set: 20261129-010000F_20261129-130000I
    recovery_window: {from: "2026-11-22T01:03:10Z", to: "2026-11-30T09:12:44Z",
                      to_source: newest archived WAL segment}
    existed: false
    command: [pgbackrest, --config=/etc/pgbackrest/pgbackrest.conf, --stanza=main,
              --pg1-path=/var/lib/postgresql/drill/data, --set=20261129-010000F_20261129-130000I,
              --type=time, "--target=2026-11-29 14:05:00.000000+00", --target-action=promote,
              --archive-mode=off, --tablespace-map-all=/var/lib/postgresql/drill/data.tablespaces, restore]
restore_seconds:
  description: How long C(pgbackrest restore) took.
  returned: when restored
  type: float
"""

import time

from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _pgbackrest.pgbackrest_argument_spec()
    argument_spec.update(
        data_directory={"type": "path", "required": True},
        mode={"type": "str", "choices": list(_pgbackrest.RESTORE_MODES), "default": "scratch"},
        target_time={"type": "str"},
        target_action={"type": "str", "choices": list(_pgbackrest.TARGET_ACTIONS), "default": "promote"},
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    result: dict = {"changed": False}
    plan: dict = {}
    try:
        plan = _pgbackrest.plan_restore(
            params["pgbackrest_bin"], params["config"], params["stanza"],
            data_directory=params["data_directory"], mode=params["mode"],
            target_time=params["target_time"], target_action=params["target_action"])
        result["plan"] = plan
        result["changed"] = True
        if module._diff:
            result["diff"] = {
                "before": {"data_directory": plan["data_directory"]},
                "after": {"data_directory": plan["data_directory"], "backup_set": plan["backup_set"],
                          "target_time": plan["target_time"] or "end of archived WAL"},
            }
        if not module.check_mode:
            started = time.monotonic()
            _pgbackrest.execute_restore(plan)
            result["restore_seconds"] = round(time.monotonic() - started, 3)
    except DbopsError as exc:
        # A failed scratch restore removed what it wrote; a failed replace may have changed files.
        result["changed"] = bool(plan) and not module.check_mode and plan["mode"] == "replace"
        fail_from_error(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
