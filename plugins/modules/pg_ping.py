#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_ping
short_description: Check that a PostgreSQL login works and report who it is
version_added: 0.1.0
description:
  - Connects with the given options and reports the server version, whether the server is a
    standby, and what the login may do (superuser, create role/database, replication, role
    memberships such as C(pg_monitor)).
  - By default a failed connection fails the task with a message naming the target and the cause.
    With O(fail_on_unavailable=false) it returns RV(is_available=false) and the message instead,
    which suits C(until) loops that wait for a server.
options:
  fail_on_unavailable:
    description:
      - Fail the task when the server cannot be reached or the login is refused.
    type: bool
    default: true
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes.info_module
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Check the monitor login
  dbops.datastores.pg_ping:
    login_host: db1.example.com
    login_user: monitor
    login_password: "{{ vault_pg_monitor_password }}"
    ssl_mode: verify-full
    ca_cert: /etc/ssl/certs/db-ca.pem
  register: pg

- name: Wait until the server accepts connections again
  dbops.datastores.pg_ping:
    login_unix_socket: /var/run/postgresql
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
  sample: "connect to PostgreSQL at app@db1:5432/app: ... password authentication failed ..."
server_version:
  description: The server's C(server_version) setting.
  returned: success
  type: str
  sample: "15.18 (Debian 15.18-0+deb12u1)"
server_version_info:
  description: Numeric version parts.
  returned: success
  type: dict
  sample: {"major": 15, "minor": 18, "full": 150018}
login_user:
  description: The role the session runs as (C(current_user)).
  returned: success
  type: str
  sample: monitor
session_user:
  description: The role that logged in (C(session_user)).
  returned: success
  type: str
  sample: monitor
database:
  description: The database connected to.
  returned: success
  type: str
  sample: postgres
in_recovery:
  description: Whether the server is a standby.
  returned: success
  type: bool
  sample: false
is_superuser:
  description: Whether the login is a superuser.
  returned: success
  type: bool
  sample: false
can_create_role:
  description: Whether the login has CREATEROLE.
  returned: success
  type: bool
  sample: false
can_create_db:
  description: Whether the login has CREATEDB.
  returned: success
  type: bool
  sample: false
can_replicate:
  description: Whether the login has REPLICATION.
  returned: success
  type: bool
  sample: false
ssl:
  description: Whether this connection uses TLS.
  returned: success
  type: bool
  sample: true
member_of:
  description: Roles the login is a member of, directly or indirectly.
  returned: success
  type: list
  elements: str
  sample: [pg_monitor, pg_read_all_settings, pg_read_all_stats, pg_stat_scan_tables]
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DbopsError,
    MissingDriverError,
)
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _postgres.pg_argument_spec()
    argument_spec.update(fail_on_unavailable={"type": "bool", "default": True})
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        conn = _postgres.connect(module.params, autocommit=True)
    except MissingDriverError as exc:
        fail_from_error(module, exc)
    except DbopsError as exc:
        if module.params["fail_on_unavailable"]:
            fail_from_error(module, exc, is_available=False)
        module.exit_json(changed=False, is_available=False, error=exc.msg)
    try:
        info = _postgres.server_info(conn)
    except _postgres.psycopg2.Error as exc:
        fail_from_error(module, DbopsError(f"read server facts: {exc}".strip()))
    finally:
        conn.close()
    module.exit_json(changed=False, is_available=True, **info)


if __name__ == "__main__":
    main()
