#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pgbackrest_info
short_description: Backups, WAL range and recovery window of pgBackRest stanzas
version_added: 0.2.0
description:
  - Runs C(pgbackrest info --output=json) as the calling user and returns each stanza's backups
    (type, times, sizes, WAL range), the archived WAL range, and the recovery window - the moments
    a point-in-time restore can reach, from the oldest restorable backup's end to the newest archived
    WAL segment (its time in the repository, read with C(pgbackrest repo-ls)).
  - Nothing is changed; the repository passphrase is never on a command line.
extends_documentation_fragment:
  - dbops.datastores.pgbackrest
  - dbops.datastores.attributes.info_module
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: What can this cluster be restored to?
  dbops.datastores.pgbackrest_info:
    stanza: main
  become: true
  become_user: postgres
  register: pgbr

- name: Show the recovery window
  ansible.builtin.debug:
    msg: "{{ pgbr.stanzas[0].summary }}"
"""

RETURN = r"""
stanzas:
  description: One entry per stanza (only O(stanza) when given).
  returned: always
  type: list
  elements: dict
  sample:
    - name: main
      status: {code: 0, message: ok}
      cipher: aes-256-cbc
      backups:
        - {label: 20261130-225904F, type: full, start: "2026-11-30T22:59:04Z", stop: "2026-11-30T22:59:07Z",
           size: 23058137, repo_size: 3364336, reference: [], wal_start: "000000010000000000000002",
           wal_stop: "000000010000000000000002", error: false}
      archive: {id: "15-1", min: "000000010000000000000001", max: "000000010000000000000005"}
      recovery_window: {from: "2026-11-30T22:59:07Z", to: "2026-11-30T23:10:00Z",
                        to_source: newest archived WAL segment}
      summary: >-
        stanza main: can restore to any moment between 2026-11-30T22:59:07Z and
        2026-11-30T23:10:00Z (1 full backup)
  contains:
    name:
      description: The stanza.
      type: str
      returned: always
    status:
      description: pgBackRest's status (C(code) 0 is ok, 1 missing stanza, 2 no valid backups, 99 other).
      type: dict
      returned: always
    backups:
      description:
        - Backups, oldest first. C(size) is the database size, C(repo_size) what the backup takes
          in the repository (compressed, encrypted); C(reference) the backups an incremental or
          differential one depends on; times are ISO 8601 UTC.
      type: list
      elements: dict
      returned: always
    archive:
      description: The archived WAL range (C(min), C(max) segment names) of the current database.
      type: dict
      returned: always
    recovery_window:
      description:
        - C(from) the end of the oldest backup whose WAL is still archived, C(to) the time the newest
          WAL segment reached the repository (or the newest backup's end when that is unknown; see
          C(to_source)). V(null) when nothing can be restored.
      type: dict
      returned: always
    summary:
      description: The window in words.
      type: str
      returned: always
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    module = DbopsModule(argument_spec=_pgbackrest.pgbackrest_argument_spec(), supports_check_mode=True)
    params = module.params
    result: dict = {"changed": False, "stanzas": []}
    try:
        _pgbackrest.verify_config(params["config"])
        stanzas = _pgbackrest.read_stanzas(params["pgbackrest_bin"], params["config"], params["stanza"])
        result["stanzas"] = [view for _raw, view in stanzas]
    except DbopsError as exc:
        fail_from_error(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
