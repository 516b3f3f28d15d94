#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: Report the backups in a backup root and check their freshness
version_added: 0.1.0
description:
  - Lists the complete backups of a backup root (PostgreSQL and MongoDB) with size, age, counts and
    verification state, a summary per engine and database, partial backups and foreign entries.
  - With O(max_age) it reports RV(stale) when the newest backup of any database (or of the
    O(engine)/O(database) selected) is older than that, or when there is no backup at all; with
    O(fail_when_stale=true) the task fails then, for alerting from AWX or cron.
options:
  root:
    description:
      - The backup root directory.
    type: path
    required: true
  engine:
    description: Only report backups of this engine.
    type: str
    choices: [postgresql, mongodb]
  database:
    description: Only report backups of this database.
    type: str
  max_age:
    description:
      - Age limit for the newest backup of each database, for example V(24h) or V(1d12h).
    type: str
  fail_when_stale:
    description:
      - Fail the task when RV(stale) is true.
      - With O(offhost), the newest off-host copy of each database is held to O(max_age) too, and an
        unreadable repository is stale.
    type: bool
    default: false
extends_documentation_fragment:
  - dbops.datastores.offhost
  - dbops.datastores.attributes.info_module
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Alert when the app database has no backup younger than 24 hours
  dbops.datastores.backup_info:
    root: /var/backups/dbops
    database: app
    max_age: 24h
    fail_when_stale: true

- name: Read the catalog
  dbops.datastores.backup_info:
    root: /var/backups/dbops
  register: catalog

- name: Show unverified backups
  ansible.builtin.debug:
    msg: "{{ catalog.backups | selectattr('verification', 'eq', 'unverified') | map(attribute='id') }}"
"""

RETURN = r"""
root:
  description: Absolute path of the backup root.
  returned: always
  type: str
backups:
  description: Complete backups, newest first.
  returned: always
  type: list
  elements: dict
  sample:
    - id: pg-app-20261124T020000Z
      path: /var/backups/dbops/pg-app-20261124T020000Z
      engine: postgresql
      database: app
      format: custom
      started_at: "2026-11-24T02:00:00.000000Z"
      finished_at: "2026-11-24T02:00:41.200000Z"
      duration_s: 41.2
      size: 73400320
      age_s: 3600.0
      server_version: "15.18"
      tool: pg_dump
      counts: {"public.messages": 120332}
      future: false
      verification: verified
      last_verification: {time: "2026-11-24T03:00:00.000000Z", kind: restore, ok: true, rto_s: 38.4}
      malformed_verifications: 0
groups:
  description:
    - Per engine and database - count, total size, newest backup (C(latest)) and its age, newest
      verified backup, and C(future), the ids of its backups dated in the future.
    - C(latest) is the newest backup not dated in the future; the newest of those only when the
      database has no other.
  returned: always
  type: list
  elements: dict
partials:
  description: Partial backups (being written, or left by a killed run) with their start time.
  returned: always
  type: list
  elements: dict
ignored:
  description:
    - Entries of the root that are not backups, including directories whose manifest fails validation.
  returned: always
  type: list
  elements: str
ignored_reasons:
  description: Why each entry of RV(ignored) is not a backup.
  returned: always
  type: dict
  sample:
    pg-app-20261124T020000Z: "manifest.json: started_at is not an ISO 8601 time with a time zone ('x')"
future:
  description:
    - Ids of backups whose start time is more than 5 minutes in the future (taken while the host
      clock was wrong). They never count as fresh; a warning names them.
  returned: always
  type: list
  elements: str
total_size:
  description: Bytes in the backups reported.
  returned: always
  type: int
newest_age_s:
  description:
    - Age in seconds of the newest backup reported, backups dated in the future left out (null when
      there is none).
  returned: always
  type: float
stale:
  description:
    - Whether some database's newest backup is older than O(max_age), or there is none, or a database
      has only backups dated in the future.
  returned: when O(max_age) is set
  type: bool
offhost:
  description:
    - With O(offhost) (enabled) - the repository, the number of copies, and per engine and database
      the number of copies, the newest copy (C(latest), C(latest_snapshot), C(latest_started_at)) and
      its age C(latest_age_s); C(error) instead when the repository cannot be read.
  returned: when O(offhost) is set
  type: dict
  sample:
    repository: sftp:dbops-restic@backup1:/srv/restic/db1
    count: 14
    groups:
      - {engine: postgresql, database: app, count: 14, latest: pg-app-20261124T020000Z,
         latest_snapshot: 4f2a9c1e, latest_started_at: "2026-11-24T02:00:00.000000Z", latest_age_s: 3600.0}
stale_reasons:
  description: One line per stale database.
  returned: when O(max_age) is set
  type: list
  elements: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_offhost, _backup_ops, _offhost
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    module = DbopsModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "engine": {"type": "str", "choices": ["postgresql", "mongodb"]},
            "database": {"type": "str"},
            "max_age": {"type": "str"},
            "fail_when_stale": {"type": "bool", "default": False},
            "offhost": {"type": "dict", "options": _offhost.offhost_option_spec()},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = _backup_ops.info(p["root"], engine=p["engine"], database=p["database"], max_age=p["max_age"])
    except DbopsError as exc:
        fail_from_error(module, exc)
    if p["offhost"] and p["offhost"]["enabled"]:
        try:
            settings = _offhost.settings_from(p["offhost"])
            result["offhost"] = _backup_offhost.info(settings, max_age=p["max_age"])
        except DbopsError as exc:  # reported, not fatal: the local catalog is still worth showing
            result["offhost"] = {"repository": p["offhost"]["repository"], "error": exc.msg}
        if p["max_age"] is not None:
            reasons = result["offhost"].get("stale_reasons") or []
            if "error" in result["offhost"]:
                reasons = [f"read off-host copies: {result['offhost']['error']}"]
            result["stale_reasons"] += reasons
            result["stale"] = bool(result["stale_reasons"])
    if p["fail_when_stale"] and result.get("stale"):
        module.fail_json(msg=f"check backup freshness in {result['root']} (max_age {p['max_age']}): "
                             + "; ".join(result["stale_reasons"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
