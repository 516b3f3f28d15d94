#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_preflight
short_description: Check a PostgreSQL database before a migration (size, sessions that block DDL)
version_added: 0.1.0
description:
  - Reports the size of the database named by O(login_db), used to estimate the pre-migration backup
    (see M(dbops.datastores.backup_space)).
  - Lists the sessions on that database whose transaction has been open longer than
    O(session_max_age) seconds (a long query, or idle in transaction). Such a session holds locks
    that make a migration's C(ALTER TABLE) wait, and every query queued behind it.
  - Waits up to O(session_wait) seconds for them to end, then fails naming each session
    (O(on_sessions=fail)) or returns them and succeeds (O(on_sessions=continue)).
  - Never changes anything.
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes.info_module
options:
  session_max_age:
    description: Seconds a transaction may have been open before it counts as blocking.
    type: float
    default: 60
  session_wait:
    description: Seconds to wait for blocking sessions to end before applying O(on_sessions).
    type: float
    default: 0
  on_sessions:
    description: What to do when blocking sessions remain after O(session_wait).
    type: str
    choices: [fail, continue]
    default: fail
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Refuse to migrate while a transaction older than 5 minutes is open (wait 2 minutes for it)
  dbops.datastores.pg_preflight:
    login_db: octopus_messenger
    session_max_age: 300
    session_wait: 120
"""

RETURN = r"""
database:
  description: The database checked.
  returned: always
  type: str
size_bytes:
  description: C(pg_database_size) of the database.
  returned: always
  type: int
sessions:
  description:
    - Sessions still blocking at the end (pid, user, application_name, client, state,
      transaction_age_s, query).
  returned: always
  type: list
  elements: dict
waited_s:
  description: Seconds spent waiting for blocking sessions.
  returned: always
  type: float
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_preflight, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    spec = _postgres.pg_argument_spec()
    spec.update(
        session_max_age={"type": "float", "default": 60},
        session_wait={"type": "float", "default": 0},
        on_sessions={"type": "str", "default": "fail", "choices": list(_pg_preflight.ON_SESSIONS)},
    )
    module = DbopsModule(argument_spec=spec, supports_check_mode=True)
    conn = None
    try:
        conn = _postgres.connect(module.params, autocommit=True)
        p = module.params
        result = _pg_preflight.preflight(conn, session_max_age=p["session_max_age"],
                                         session_wait=p["session_wait"], on_sessions=p["on_sessions"])
    except DbopsError as exc:
        fail_from_error(module, exc)
    except _postgres.psycopg2.Error as exc:
        fail_from_error(module, DbopsError(f"pre-flight {module.params.get('login_db')}: {exc}".strip()))
    finally:
        if conn is not None:
            conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
