# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule of pg_migrate and mongodb_migrate."""

from __future__ import annotations

from ansible_collections.dbops.datastores.plugins.module_utils._migrations import shipped_summary
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule


class MigrateModule(DbopsModule):
    """The collection's AnsibleModule whose invocation log on the host counts the files shipped
    from ``src``.

    AnsibleModule logs every option of every run to the host's journal (or syslog). With ``src``,
    the action plugin sends the migration files in the ``files`` option, so each run, changed or
    not, would log every file's content (base64; hundreds of KB for a long history). The log names
    them by count instead, as the result's ``invocation`` does (:func:`shipped_summary`).
    """

    def _log_invocation(self) -> None:
        params = self.params
        self.params = dict(params)
        shipped_summary(self.params)
        try:
            super()._log_invocation()
        finally:
            self.params = params
