#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_assert
short_description: Named SQL assertions that must hold in a PostgreSQL database
version_added: 0.1.0
description:
  - Runs each assertion's query in the database named by O(login_db), in a read-only transaction
    that is rolled back. A query must return exactly one row with one column that is C(true).
  - Every assertion runs; the task fails listing the name of each one that does not hold and what
    it returned (or the server's error). Never changes anything.
  - C(migrate.yml) runs it after the migrations with the C(assertions) of each database.
extends_documentation_fragment:
  - dbops.datastores.postgres
  - dbops.datastores.attributes.info_module
options:
  assertions:
    description: The assertions.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: What the assertion says; failures are reported by this name.
        type: str
        required: true
      sql:
        description: A query returning one row with one boolean.
        type: str
        required: true
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Check the schema after the migrations
  dbops.datastores.pg_assert:
    login_db: octopus_messenger
    assertions:
      - name: every expected table is present
        sql: >-
          SELECT count(*) = 2 FROM information_schema.tables
          WHERE table_schema = 'public' AND table_name IN ('messages', 'conversations')
      - name: no message left without a storage level
        sql: SELECT NOT EXISTS (SELECT 1 FROM messages WHERE storage_level IS NULL)
"""

RETURN = r"""
assertions:
  description: Each assertion with C(ok) and, when it failed, C(error).
  returned: always
  type: list
  elements: dict
  sample: [{name: every expected table is present, ok: true}]
failed_assertions:
  description: Names of the assertions that failed.
  returned: on failure
  type: list
  elements: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _assertions, _pg_migrate, _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    spec = _postgres.pg_argument_spec()
    spec.update(assertions={"type": "list", "elements": "dict", "required": True, "options": {
        "name": {"type": "str", "required": True},
        "sql": {"type": "str", "required": True},
    }})
    module = DbopsModule(argument_spec=spec, supports_check_mode=True)
    conn = None
    try:
        _assertions.validate(module.params["assertions"], ["sql"])
        conn = _postgres.connect(module.params, autocommit=True)
        check = _assertions.pg_check(conn, _postgres.psycopg2.Error, _pg_migrate.server_message)
        results = _assertions.run_all(module.params["assertions"], check)
        target = f"PostgreSQL database {module.params.get('login_db') or 'postgres'}"
        _assertions.raise_failures(results, target)
    except DbopsError as exc:
        fail_from_error(module, exc)
    finally:
        if conn is not None:
            conn.close()
    module.exit_json(changed=False, assertions=results)


if __name__ == "__main__":
    main()
