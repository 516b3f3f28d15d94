#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_replication_info
short_description: Tell whether a data directory is a standby of a given primary, and what to do
version_added: 0.2.0
description:
  - Reads a PostgreSQL data directory on the managed host (C(PG_VERSION), C(standby.signal), the
    system identifier from C(pg_controldata)) and decides what the
    C(dbops.datastores.postgresql) role does with it on a standby
    (RV(decision.action)) - C(none) when it already is a standby of the primary's system,
    C(rebuild) when it holds nothing to keep (or O(allow_rebuild=true)), C(refuse) when a base
    backup would wipe a foreign or former-primary data directory.
  - The primary's system identifier is O(primary_system_identifier) or, with O(login_host), read
    with C(IDENTIFY_SYSTEM) over a replication connection (which also proves the standby's login,
    passfile and the primary's pg_hba). Nothing is changed.
options:
  data_directory:
    description: The data directory to inspect.
    type: path
    required: true
  bin_dir:
    description: Directory of the server binaries (C(pg_controldata)).
    type: path
    required: true
  primary_system_identifier:
    description:
      - The primary's system identifier, when already known (for example read by this module on
        the primary). Wins over a replication connection.
    type: str
  passfile:
    description: libpq password file for the replication connection (instead of O(login_password)).
    type: path
  allow_rebuild:
    description: Allow a rebuild of a data directory that is not a standby of the primary.
    type: bool
    default: false
  force_rebuild:
    description:
      - Decide C(rebuild) for any existing data directory, even a standby of the primary's system
        (after a point-in-time restore of the primary its standbys cannot follow the new timeline).
    type: bool
    default: false
  decide:
    description:
      - Return a decision. Without it (on the primary itself) only RV(local) is returned.
    type: bool
    default: true
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes.info_module
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Is this node a standby of pg1?
  dbops.datastores.pg_replication_info:
    data_directory: /var/lib/postgresql/15/main
    bin_dir: /usr/lib/postgresql/15/bin
    login_host: 10.0.0.11
    login_user: replicator
    passfile: /var/lib/postgresql/15/main.replication.pgpass
  register: replication

- name: Refuse to wipe a foreign data directory
  ansible.builtin.assert:
    that: replication.decision.action != 'refuse'
    fail_msg: "{{ replication.decision.reason }}"
"""

RETURN = r"""
local:
  description: What the data directory holds.
  returned: always
  type: dict
  sample: {"data_directory": "/var/lib/postgresql/15/main", "initialized": true,
           "system_identifier": "7312345678901234567", "standby_signal": true,
           "new_cluster_marker": false, "cluster_state": "in archive recovery",
           "checkpoint_lsn": "0/3000060"}
primary:
  description: The primary's answer to C(IDENTIFY_SYSTEM) (with O(login_host) only).
  returned: when the primary was asked
  type: dict
  sample: {"system_identifier": "7312345678901234567", "timeline": 1, "wal_lsn": "0/3000148"}
decision:
  description: What the role does with this data directory, and why.
  returned: when O(decide=true)
  type: dict
  sample: {"action": "none", "reason": "already a standby of system 7312345678901234567"}
  contains:
    action:
      description: C(none), C(rebuild) or C(refuse).
      type: str
      returned: always
    reason:
      description: Why, naming the data directory and the system identifiers.
      type: str
      returned: always
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_replication, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _postgres.pg_argument_spec()
    argument_spec.update(
        data_directory={"type": "path", "required": True},
        bin_dir={"type": "path", "required": True},
        primary_system_identifier={"type": "str"},
        passfile={"type": "path", "no_log": False},
        allow_rebuild={"type": "bool", "default": False},
        force_rebuild={"type": "bool", "default": False},
        decide={"type": "bool", "default": True},
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    result: dict = {"changed": False}
    try:
        local = _pg_replication.read_local_state(params["data_directory"], params["bin_dir"])
        result["local"] = local.as_dict()
        primary_sysid = params["primary_system_identifier"] or None
        if params["decide"] and primary_sysid is None and params["login_host"]:
            result["primary"] = _pg_replication.identify_primary(params, params["passfile"])
            primary_sysid = result["primary"]["system_identifier"]
        if params["decide"]:
            decision = _pg_replication.decide_standby(
                local, primary_sysid, params["allow_rebuild"], params["force_rebuild"]
            )
            result["decision"] = decision.as_dict()
    except DbopsError as exc:
        fail_from_error(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
