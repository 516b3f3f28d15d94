#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_restore
short_description: Restore a MongoDB backup from a backup root into a database
version_added: 0.1.0
description:
  - Verifies every file of the backup against its manifest (size and sha256) first and refuses a
    backup that does not match. Then restores it with C(mongorestore) when installed, otherwise
    natively through pymongo - collections with their options, documents as raw BSON, indexes, then
    views - and compares the document count of every collection with the manifest.
  - A target database without collections is restored into. One that already has collections is
    only replaced with O(clean=true) (the backup's collections are dropped first); otherwise
    nothing is done and the task reports C(changed=false) with RV(skipped_reason).
  - When the restore fails (tool error, document counts that differ from the manifest) into a
    database that had no collections before the task, that database is dropped before the task fails
    (C(database_dropped=true) in the failed result), so a re-run restores again; when the drop fails
    too, the message says the database is incomplete and must be dropped by hand.
options:
  root:
    description: The backup root directory.
    type: path
    required: true
  backup:
    description:
      - Id of the backup, or V(latest) for the newest MongoDB backup of O(source_database).
    type: str
    default: latest
  source_database:
    description:
      - With O(backup=latest), the database whose newest backup is restored. Defaults to O(database).
      - With a backup id, when set, it must be that backup's database (a mismatch is refused).
    type: str
  database:
    description:
      - The database to restore into. Defaults to the backup's own database.
    type: str
  clean:
    description: Drop the backup's collections and views in the target before restoring them.
    type: bool
    default: false
  tool:
    description:
      - V(auto) uses C(mongorestore) when installed and the native restore otherwise; V(mongodump)
        requires the MongoDB Database Tools; V(native) always restores natively.
    type: str
    choices: [auto, mongodump, native]
    default: auto
  mongorestore_path:
    description: Path of the C(mongorestore) binary when it is not on PATH.
    type: path
extends_documentation_fragment:
  - dbops.datastores.offhost
  - dbops.datastores.offhost.restore
  - dbops.datastores.mongodb
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Restore the newest backup of messages into messages_restored
  dbops.datastores.mongodb_restore:
    root: /var/backups/dbops
    source_database: messages
    database: messages_restored

- name: Put a known backup back, replacing the collections it contains
  dbops.datastores.mongodb_restore:
    root: /var/backups/dbops
    backup: mongodb-messages-20261124T020000Z
    clean: true
    login_user: admin
    login_password: "{{ vault_mongo_admin_password }}"
"""

RETURN = r"""
offhost:
  description:
    - With O(source=offhost) - the copy used (C(id), C(snapshot), C(copy)), and C(fetched) (whether
      it was brought back into the backup root by this run).
  returned: when O(source=offhost)
  type: dict
backup:
  description: The backup restored (see M(dbops.datastores.backup_info) for the fields).
  returned: success
  type: dict
database:
  description: The target database.
  returned: success
  type: str
restored:
  description: Whether a restore ran.
  returned: success
  type: bool
commands:
  description: What runs (or would run in check mode).
  returned: when a restore runs or would run
  type: list
  elements: str
counts:
  description: Document counts per collection in the target after the restore.
  returned: when restored
  type: dict
duration_s:
  description: Seconds the restore took.
  returned: when restored
  type: float
skipped_reason:
  description: Why nothing was restored.
  returned: when the target is not empty and O(clean=false)
  type: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import (
    _backup_offhost,
    _mongodb,
)
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _mongodb.mongodb_argument_spec()
    argument_spec.update(
        root={"type": "path", "required": True},
        backup={"type": "str", "default": "latest"},
        source_database={"type": "str"},
        database={"type": "str"},
        clean={"type": "bool", "default": False},
        tool={"type": "str", "default": "auto", "choices": ["auto", "mongodump", "native"]},
        mongorestore_path={"type": "path"},
    )
    argument_spec.update(_backup_offhost.restore_option_spec())
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True,
                         required_if=_backup_offhost.RESTORE_REQUIRED_IF)
    p = module.params
    options = {k: p[k] for k in ("backup", "database", "clean", "tool", "mongorestore_path")}
    options["source_database"] = p["source_database"] or (p["database"] if p["backup"] == "latest" else None)
    try:
        result = _backup_offhost.restore_from_source("mongodb", p, p["root"], options,
                                                     check=module.check_mode)
    except DbopsError as exc:
        fail_from_error(module, exc)
    if module._diff:
        result["diff"] = {"before": {"database": result["database"], "restored_from": None},
                          "after": {"database": result["database"],
                                    "restored_from": result["backup"]["id"] if result["changed"] else None}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
