# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule of pg_migrate and mongodb_migrate."""

from __future__ import annotations

import gc
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbops.datastores.plugins.module_utils._migrations import shipped_summary


class MigrateModule(AnsibleModule):
    """AnsibleModule whose invocation log on the host counts the files shipped from ``src``, and
    whose process ends without walking its heap.

    AnsibleModule logs every option of every run to the host's journal (or syslog). With ``src``,
    the action plugin sends the migration files in the ``files`` option, so each run, changed or
    not, would log every file's content (base64; hundreds of KB for a long history). The log names
    them by count instead, as the result's ``invocation`` does (:func:`shipped_summary`).

    ``exit_json`` and ``fail_json`` end the module's process. Before that, the objects still alive
    (ansible's module_utils, psycopg2 or pymongo, the files and the plan) are frozen out of the
    cyclic garbage collector (``gc.freeze``): the interpreter's collections at exit would walk all
    of them only to find what the process's end frees anyway, about 20 ms of every run.
    """

    def exit_json(self, **kwargs: Any) -> NoReturn:
        gc.freeze()
        super().exit_json(**kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> NoReturn:
        gc.freeze()
        super().fail_json(msg, **kwargs)

    def _log_invocation(self) -> None:
        params = self.params
        self.params = dict(params)
        shipped_summary(self.params)
        try:
            super()._log_invocation()
        finally:
            self.params = params
