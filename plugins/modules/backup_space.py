#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_space
short_description: Refuse a backup that will not fit in the backup root, before dumping anything
version_added: 0.1.0
description:
  - Estimates the size of a new backup of each database in O(databases) as its current size times
    a factor, and fails when the sum (times O(margin)) is more than the free space of the file
    system of O(root).
  - The factor is the size of the newest backup of that database in O(root) divided by the
    database's current size; without a backup yet it is O(default_factor).
  - C(migrate.yml) runs it before the pre-migration backup, so a full disk is found before the dump
    starts instead of half-way through it. Never changes anything.
extends_documentation_fragment:
  - dbops.datastores.attributes.info_module
options:
  root:
    description: The backup root (as for M(dbops.datastores.pg_backup)).
    type: path
    required: true
  databases:
    description: The databases about to be backed up.
    type: list
    elements: dict
    required: true
    suboptions:
      engine:
        description: C(postgresql) or C(mongodb).
        type: str
        required: true
        choices: [postgresql, mongodb]
      database:
        description: Database name.
        type: str
        required: true
      size_bytes:
        description:
          - Its current size (for PostgreSQL the C(size_bytes) of M(dbops.datastores.pg_preflight)).
        type: int
        required: true
  default_factor:
    description: Backup size relative to the database size when the database has no backup yet.
    type: float
    default: 1.0
  margin:
    description: Safety margin multiplied into the estimate (at least 1).
    type: float
    default: 1.2
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Refuse before dumping when the backup root is too small
  dbops.datastores.backup_space:
    root: /var/backups/dbops
    databases:
      - {engine: postgresql, database: app, size_bytes: 734003200}
"""

RETURN = r"""
free_bytes:
  description: Bytes free in the file system of O(root).
  returned: always
  type: int
needed_bytes:
  description: Sum of the estimates.
  returned: always
  type: int
estimates:
  description:
    - Per database - label, database_bytes, factor, factor_source (C(last backup) or C(default)),
      margin, estimated_bytes.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog, _migrate_policy
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    module = DbopsModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "databases": {"type": "list", "elements": "dict", "required": True, "options": {
                "engine": {"type": "str", "required": True, "choices": ["postgresql", "mongodb"]},
                "database": {"type": "str", "required": True},
                "size_bytes": {"type": "int", "required": True},
            }},
            "default_factor": {"type": "float", "default": 1.0},
            "margin": {"type": "float", "default": 1.2},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        catalog = _backup_catalog.scan(p["root"])
        last = {}
        for entry in p["databases"]:
            newest = catalog.latest(entry["engine"], entry["database"])
            if newest is not None:
                last[f"{entry['engine']}:{entry['database']}"] = newest.size
        result = _migrate_policy.check_backup_space(
            p["root"], p["databases"], default_factor=p["default_factor"], margin=p["margin"],
            last_backups=last)
    except DbopsError as exc:
        fail_from_error(module, exc)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
