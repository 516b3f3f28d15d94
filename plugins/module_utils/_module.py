# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: its AnsibleModule, and the one place where
module_utils errors become ``fail_json`` calls."""

from __future__ import annotations

import gc
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DbopsError,
    MissingDriverError,
)


class DbopsModule(AnsibleModule):
    """AnsibleModule whose process ends without walking its heap.

    ``exit_json`` and ``fail_json`` end the module's process. Before that, the objects still alive
    (ansible's module_utils, the driver, the module's own data) are frozen out of the cyclic garbage
    collector (``gc.freeze``): the interpreter's collections at exit would walk all of them only to
    find what the process's end frees anyway, about 20 ms of every run (``bench/pg_migrate_costs.py``
    part 5). Objects are still freed by their reference counts as the interpreter ends
    (connections closed, files flushed).
    """

    def exit_json(self, **kwargs: Any) -> NoReturn:
        gc.freeze()
        super().exit_json(**kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> NoReturn:
        gc.freeze()
        super().fail_json(msg, **kwargs)


def fail_from_error(module: Any, exc: DbopsError, **extra: Any) -> None:
    """Report ``exc`` through ``module.fail_json`` (never returns)."""
    if isinstance(exc, MissingDriverError):
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.import_error, **extra)
    details = dict(exc.details)
    details.update(extra)
    module.fail_json(msg=exc.msg, **details)
