#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_ping
short_description: Check that a MongoDB login works and report who it is
version_added: 0.1.0
description:
  - Connects with the given options, runs C(ping), and reports the server version, whether the
    node is a writable primary, its replica set, and the roles of the authenticated user.
  - By default a failed connection fails the task with a message naming the target and the cause.
    With O(fail_on_unavailable=false) it returns RV(is_available=false) and the message instead.
options:
  fail_on_unavailable:
    description:
      - Fail the task when the server cannot be reached or the login is refused.
    type: bool
    default: true
extends_documentation_fragment:
  - dbops.datastores.mongodb
  - dbops.datastores.attributes.info_module
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Check the monitor login
  dbops.datastores.mongodb_ping:
    login_host: mongo1.example.com
    login_user: monitor
    login_password: "{{ vault_mongo_monitor_password }}"
    tls: true
    tls_ca_file: /etc/ssl/certs/db-ca.pem
  register: mongo

- name: Wait for the node to accept connections after a restart
  dbops.datastores.mongodb_ping:
    login_port: 27017
    fail_on_unavailable: false
  register: ping
  until: ping.is_available
  retries: 30
  delay: 2
"""

RETURN = r"""
is_available:
  description: Whether the connection and login succeeded.
  returned: always
  type: bool
  sample: true
error:
  description: Why the connection failed (only with O(fail_on_unavailable=false)).
  returned: when not available
  type: str
  sample: "connect to MongoDB at admin@localhost:27017: Authentication failed. (code 18) (...)"
server_version:
  description: Server version from C(buildInfo).
  returned: success
  type: str
  sample: "8.0.4"
server_version_info:
  description: Major, minor and patch numbers.
  returned: success
  type: list
  elements: int
  sample: [8, 0, 4]
is_primary:
  description: Whether the node accepts writes (C(hello.isWritablePrimary)).
  returned: success
  type: bool
  sample: true
replica_set:
  description: Replica set name, or null for a standalone server.
  returned: success
  type: str
  sample: rs0
login_user:
  description: Authenticated user as C(user@db), or null when unauthenticated.
  returned: success
  type: str
  sample: monitor@admin
roles:
  description: Roles of the authenticated user as C(role@db).
  returned: success
  type: list
  elements: str
  sample: [clusterMonitor@admin, read@app]
is_root:
  description: Whether the user has the C(root) role.
  returned: success
  type: bool
  sample: false
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DbopsError,
    MissingDriverError,
)
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _mongodb.mongodb_argument_spec()
    argument_spec.update(fail_on_unavailable={"type": "bool", "default": True})
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        client = _mongodb.connect(module.params)
    except MissingDriverError as exc:
        fail_from_error(module, exc)
    except DbopsError as exc:
        if module.params["fail_on_unavailable"]:
            fail_from_error(module, exc, is_available=False)
        module.exit_json(changed=False, is_available=False, error=exc.msg)
    try:
        info = _mongodb.server_info(client)
    except _mongodb.pymongo.errors.PyMongoError as exc:
        fail_from_error(module, DbopsError(f"read server facts from MongoDB: {exc}"))
    finally:
        client.close()
    module.exit_json(changed=False, is_available=True, **info)


if __name__ == "__main__":
    main()
