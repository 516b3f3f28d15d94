#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_pitr_drill
short_description: Prove a point-in-time restore works - restore, start, check, measure, remove
version_added: 0.2.0
description:
  - Restores a pgBackRest stanza to O(target_time) into the scratch directory O(data_directory)
    (the guards of M(dbops.datastores.pgbackrest_restore) in C(mode=scratch) apply), starts it with
    C(pg_ctl) as the calling user on O(port), waits until it accepts connections (the time from the
    start of the restore to then is RV(rto_seconds)), runs O(checks), then stops the copy and
    removes it - also when a step fails or the module is interrupted (SIGTERM, SIGHUP).
  - The copy never touches the live cluster - it listens on no TCP address, only on a Unix socket
    in a private C(<data_directory>.run) directory (its own C(pg_hba.conf) trusts that socket), with
    C(archive_mode=off), no C(primary_conninfo) and its tablespaces inside the copy.
  - The task fails when a check does not return true, naming it; the copy is removed anyway.
  - C(changed) is always false - the host ends as it started.
options:
  data_directory:
    description: The scratch directory (empty or absent; created and removed by the module).
    type: path
    required: true
  target_time:
    description: The moment to restore to, ISO 8601 with a time zone. Absent - the end of the archived WAL.
    type: str
  port:
    description: A spare port for the copy's socket (C(.s.PGSQL.<port>)).
    type: int
    required: true
  checks:
    description: SQL checks run on the copy; each must return one row with one value, true.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The check's name in the result.
        type: str
        required: true
      sql:
        description:
          - A query returning one boolean, e.g. C(SELECT count(*) = 1 FROM markers WHERE name = 'before').
        type: str
        required: true
      database:
        description: The database to run it in.
        type: str
        default: postgres
  login_user:
    description: The database role the checks run as (a role of the restored cluster).
    type: str
    default: postgres
  bin_dir:
    description: The server binaries (C(pg_ctl), C(psql)). Default - C(/usr/lib/postgresql/<major>/bin)
      of the stanza's PostgreSQL major.
    type: path
  start_timeout:
    description: Seconds to wait for the copy to finish recovery and accept connections.
    type: int
    default: 600
extends_documentation_fragment:
  - dbops.datastores.pgbackrest
attributes:
  check_mode:
    description: In check mode the module returns the restore plan and starts nothing.
    support: full
  diff_mode:
    description: Nothing on the managed host changes for good, so there is no diff.
    support: none
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Restore to 14:05 into a scratch copy and check the markers
  dbops.datastores.pg_pitr_drill:
    stanza: main
    data_directory: /var/lib/postgresql/pitr-drill
    port: 55432
    target_time: "2026-11-30T14:05:00Z"
    checks:
      - name: written before the target
        database: app
        sql: SELECT count(*) = 1 FROM drill_markers WHERE name = 'before'
      - name: written after the target
        database: app
        sql: SELECT count(*) = 0 FROM drill_markers WHERE name = 'after'
  become: true
  become_user: postgres
  register: drill

- name: Report the RTO
  ansible.builtin.debug:
    msg: "restored to {{ drill.restored_to }} in {{ drill.rto_seconds }} s"
"""

RETURN = r"""
plan:
  description: The scratch restore (as returned by M(dbops.datastores.pgbackrest_restore)).
  returned: always
  type: dict
restore_seconds:
  description: Seconds C(pgbackrest restore) took.
  returned: when restored
  type: float
rto_seconds:
  description: Seconds from the start of the restore until the copy accepted connections.
  returned: when the copy started
  type: float
restored_to:
  description: The commit time of the last transaction the copy replayed (ISO 8601 UTC).
  returned: when the copy started
  type: str
checks:
  description: One entry per check - C(name), C(database), C(passed), C(value) (C(t) is true), C(error).
  returned: always
  type: list
  elements: dict
cleaned_up:
  description: The copy was stopped and its directories removed.
  returned: when not in check mode
  type: bool
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_pitr_drill, _pgbackrest
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _pgbackrest.pgbackrest_argument_spec()
    argument_spec.update(
        data_directory={"type": "path", "required": True},
        target_time={"type": "str"},
        port={"type": "int", "required": True},
        checks={"type": "list", "elements": "dict", "default": [], "options": {
            "name": {"type": "str", "required": True},
            "sql": {"type": "str", "required": True},
            "database": {"type": "str", "default": "postgres"},
        }},
        login_user={"type": "str", "default": "postgres"},
        bin_dir={"type": "path"},
        start_timeout={"type": "int", "default": 600},
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    result: dict = {"changed": False, "checks": []}
    try:
        if module.check_mode:
            _pg_pitr_drill.check_port(params["port"])
            result["plan"] = _pgbackrest.plan_restore(
                params["pgbackrest_bin"], params["config"], params["stanza"],
                data_directory=params["data_directory"], mode="scratch",
                target_time=params["target_time"], target_action="promote")
        else:
            result.update(_pg_pitr_drill.drill(params))
    except DbopsError as exc:
        # The drill's partial result (checks run so far, cleaned_up) travels in the error's details.
        fail_from_error(module, exc, **{key: val for key, val in result.items() if key not in exc.details})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
