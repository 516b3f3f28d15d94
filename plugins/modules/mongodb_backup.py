#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_backup
short_description: Back up a MongoDB database into a backup root in mongodump's layout
version_added: 0.1.0
description:
  - Dumps one database with C(mongodump) when it is installed, otherwise with a native dump through
    pymongo that writes mongodump's directory layout under C(dump/), so C(mongorestore --dir
    <backup>/dump) can restore it - C(<db>/<coll>.bson) (C(.bson.gz) with O(gzip)) and
    C(<coll>.metadata.json) (C(.metadata.json.gz)) in canonical extended JSON with options, indexes,
    uuid, collection name and type. Views get a metadata file (C(viewOn), C(pipeline)) and no data.
  - The native dump streams raw BSON batches to disk without decoding documents and counts them on
    the way; the counts go into the manifest.
  - The backup is written into C(<root>/<id>.partial/) and renamed into place only after its
    manifest has been written last and atomically; see M(dbops.datastores.pg_backup) for the
    catalog format. Files are created 0600, directories 0700. Passwords never reach argv (mongodump
    gets them through a temporary 0600 C(--config) file).
  - Like mongodump without C(--oplog), the dump is not a point-in-time snapshot of a database that
    is being written to.
options:
  root:
    description:
      - The backup root directory. It must exist and be writable.
    type: path
    required: true
  database:
    description:
      - The database to dump. It must exist.
    type: str
    required: true
  gzip:
    description:
      - Compress data and metadata files with gzip (mongodump's C(--gzip) layout).
    type: bool
    default: true
  tool:
    description:
      - V(auto) uses C(mongodump) when it is installed and the native dump otherwise; V(mongodump)
        requires it; V(native) always uses the native dump.
    type: str
    choices: [auto, mongodump, native]
    default: auto
  mongodump_path:
    description:
      - Path of the C(mongodump) binary when it is not on PATH.
    type: path
  min_interval:
    description:
      - Do not take a backup when a complete backup of this database younger than this exists
        (for example V(20h)); the task then reports that backup and C(changed=false).
    type: str
extends_documentation_fragment:
  - dbops.datastores.mongodb
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Back up the messages database
  dbops.datastores.mongodb_backup:
    root: /var/backups/dbops
    database: messages
    login_user: backup
    login_password: "{{ vault_mongo_backup_password }}"

- name: Native dump, uncompressed, at most every 12 hours
  dbops.datastores.mongodb_backup:
    root: /var/backups/dbops
    database: messages
    tool: native
    gzip: false
    min_interval: 12h
"""

RETURN = r"""
backup:
  description: The backup taken (or, when skipped by O(min_interval), the recent one found).
  returned: success, not in check mode
  type: dict
  sample:
    id: mongodb-messages-20261124T020000Z
    engine: mongodb
    database: messages
    format: mongodump
    tool: dbops-native
    size: 1048576
    counts: {"messages": 120332, "alert_events": 310}
plan:
  description: What the backup runs.
  returned: when a backup is (or would be) taken
  type: dict
skipped_reason:
  description: Why no backup was taken.
  returned: when O(min_interval) found a recent backup
  type: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops, _mongodb, _mongodb_backup
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _mongodb.mongodb_argument_spec()
    argument_spec.update(
        root={"type": "path", "required": True},
        **_mongodb_backup.backup_option_spec(),
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    options = {k: p[k] for k in _mongodb_backup.backup_option_spec() if k != "min_interval"}
    try:
        result = _backup_ops.backup("mongodb", p, p["root"], options, min_interval=p["min_interval"],
                                    check=module.check_mode)
    except DbopsError as exc:
        fail_from_error(module, exc)
    if module._diff:
        after = result.get("backup", {}).get("id") or "(new backup)"
        result["diff"] = {"before": {"backup": None} if result["changed"] else {"backup": after},
                          "after": {"backup": after}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
