#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_assert
short_description: Named document counts that must hold in a MongoDB database
version_added: 0.1.0
description:
  - For each assertion, counts the documents of O(assertions[].collection) in O(database) that
    match O(assertions[].filter) and compares the number with O(assertions[].count).
  - Every assertion runs; the task fails listing the name of each one that does not hold and what
    it counted. Never changes anything.
  - C(migrate.yml) runs it after the migrations with the C(assertions) of each database.
extends_documentation_fragment:
  - dbops.datastores.mongodb
  - dbops.datastores.attributes.info_module
options:
  database:
    description: The database.
    type: str
    required: true
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
      collection:
        description: Collection (or view) to count in.
        type: str
        required: true
      filter:
        description: Query filter; empty counts every document.
        type: dict
        default: {}
      count:
        description: The expected number of matching documents.
        type: int
        required: true
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: No message left without a storage level after the back-fill
  dbops.datastores.mongodb_assert:
    database: octopus_messenger
    assertions:
      - name: every message has a storage level
        collection: messages
        filter: {storage_level: {$exists: false}}
        count: 0
"""

RETURN = r"""
assertions:
  description: Each assertion with C(ok) and, when it failed, C(error).
  returned: always
  type: list
  elements: dict
failed_assertions:
  description: Names of the assertions that failed.
  returned: on failure
  type: list
  elements: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _assertions, _mongodb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    spec = _mongodb.mongodb_argument_spec()
    spec.update(
        database={"type": "str", "required": True},
        assertions={"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "collection": {"type": "str", "required": True},
            "filter": {"type": "dict", "default": {}},
            "count": {"type": "int", "required": True},
        }},
    )
    module = DbopsModule(argument_spec=spec, supports_check_mode=True)
    client = None
    try:
        _assertions.validate(module.params["assertions"], ["collection"])
        client = _mongodb.connect(module.params)
        database = client[module.params["database"]]
        check = _assertions.mongo_check(database, _mongodb.pymongo.errors.PyMongoError)
        results = _assertions.run_all(module.params["assertions"], check)
        _assertions.raise_failures(results, f"MongoDB database {module.params['database']}")
    except DbopsError as exc:
        fail_from_error(module, exc)
    finally:
        if client is not None:
            client.close()
    module.exit_json(changed=False, assertions=results)


if __name__ == "__main__":
    main()
