#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_retention
short_description: Prune a backup root by a restic-style (GFS) retention policy
version_added: 0.1.0
description:
  - Applies the policy separately to the backups of each engine and database. Backups are ordered
    newest first; each C(keep_*) rule keeps the newest backup of each of the last N hours, days, ISO
    weeks, months or years that have a backup (calendar periods in UTC); O(keep_last) keeps the N
    newest; O(keep_within) keeps every backup younger than the given duration, measured back from the
    newest backup of that database (so backups are not aged out when the schedule stops). A backup
    that any rule keeps is kept. The newest complete backup of each database is always kept.
  - Only directories recognised as backups (a valid manifest whose id matches the directory name) or
    as partial backups (C(<id>.partial) with the backup marker) are ever removed. Foreign files and
    directories are listed in RV(ignored) and left alone; symlinks are never followed or removed.
  - Partial backups older than O(partial_max_age) whose writer is no longer running are removed.
  - Check mode is the dry run. RV(decisions) lists each backup with keep/remove and the rules that
    decided it, and nothing is removed.
  - A complete backup is first renamed to C(<id>.partial), then deleted, so an interrupted removal
    never leaves a complete-looking backup with missing files.
options:
  root:
    description:
      - The backup root directory.
    type: path
    required: true
  keep_last:
    description: Keep the N newest backups. V(-1) keeps all.
    type: int
    default: 0
  keep_hourly:
    description: Keep the newest backup of each of the last N hours that have one. V(-1) for no limit.
    type: int
    default: 0
  keep_daily:
    description: Keep the newest backup of each of the last N days that have one. V(-1) for no limit.
    type: int
    default: 0
  keep_weekly:
    description: Keep the newest backup of each of the last N ISO weeks that have one. V(-1) for no limit.
    type: int
    default: 0
  keep_monthly:
    description: Keep the newest backup of each of the last N months that have one. V(-1) for no limit.
    type: int
    default: 0
  keep_yearly:
    description: Keep the newest backup of each of the last N years that have one. V(-1) for no limit.
    type: int
    default: 0
  keep_within:
    description:
      - Keep every backup younger than this duration relative to the newest backup of the same
        database (never one dated in the future, and never later than now), for example V(7d) or V(36h).
    type: str
  engine:
    description: Only prune backups of this engine.
    type: str
    choices: [postgresql, mongodb]
  database:
    description: Only prune backups of this database.
    type: str
  partial_max_age:
    description:
      - Remove C(.partial) directories older than this whose writing process is gone.
    type: str
    default: 1d
notes:
  - At least one C(keep_*) option must be set; an empty policy is refused instead of removing
    everything but the newest backup.
extends_documentation_fragment:
  - dbops.datastores.attributes
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Dry run of a 7 daily / 4 weekly / 6 monthly policy
  dbops.datastores.backup_retention:
    root: /var/backups/dbops
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 6
  check_mode: true
  register: plan

- name: Apply it to the app database only, keeping everything from the last 36 hours too
  dbops.datastores.backup_retention:
    root: /var/backups/dbops
    engine: postgresql
    database: app
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 6
    keep_within: 36h
"""

RETURN = r"""
decisions:
  description: Every backup considered, newest first per database, with the action and its reasons.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: pg-app-20261124T020000Z, engine: postgresql, database: app, action: keep,
       reasons: ["daily 2026-11-24", "weekly 2026-W48", "monthly 2026-11"], size: 73400320,
       started_at: "2026-11-24T02:00:00.000000Z"}
    - {id: pg-app-20261124T010000Z, engine: postgresql, database: app, action: remove,
       reasons: ["no rule keeps it"], size: 73400100, started_at: "2026-11-24T01:00:00.000000Z"}
keep:
  description: Ids of the backups kept.
  returned: always
  type: list
  elements: str
remove:
  description: Ids of the backups the policy removes (removed unless in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: Ids actually removed.
  returned: always
  type: list
  elements: str
stale_partials:
  description: Partial backups that are stale (removed unless in check mode).
  returned: always
  type: list
  elements: str
removed_partials:
  description: Partial backups actually removed.
  returned: always
  type: list
  elements: str
active_partials:
  description: Partial backups whose writer is still running (never removed).
  returned: always
  type: list
  elements: str
ignored:
  description:
    - Entries of the root that are not backups, including directories whose manifest fails
      validation; they are never touched.
  returned: always
  type: list
  elements: str
ignored_reasons:
  description: Why each entry of RV(ignored) is not a backup.
  returned: always
  type: dict
future:
  description:
    - Ids of backups whose start time is more than 5 minutes in the future (taken while the host
      clock was wrong). They are kept (reason C(future)), take no rule's slot, and O(keep_within) is
      not measured from them; a warning names them.
  returned: always
  type: list
  elements: str
freed_bytes:
  description: Bytes of backup files removed.
  returned: always
  type: int
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_ops
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error

RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


def main() -> None:
    argument_spec = _backup_ops.retention_option_spec()
    argument_spec.update(
        root={"type": "path", "required": True},
        engine={"type": "str", "choices": list(_backup_ops.ENGINES)},
        database={"type": "str"},
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    policy = {k: p[k] for k in (*RULES, "keep_within")}
    try:
        result = _backup_ops.apply_retention(p["root"], policy, engine=p["engine"], database=p["database"],
                                             partial_max_age=p["partial_max_age"], check=module.check_mode)
    except DbopsError as exc:
        fail_from_error(module, exc)
    if module._diff:
        before = sorted([d["id"] for d in result["decisions"]] + result["stale_partials"])
        result["diff"] = {"before": {"backups": before}, "after": {"backups": sorted(result["keep"])}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
