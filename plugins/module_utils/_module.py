# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where module_utils errors become ``fail_json`` calls."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DbopsError,
    MissingDriverError,
)


def fail_from_error(module: Any, exc: DbopsError, **extra: Any) -> None:
    """Report ``exc`` through ``module.fail_json`` (never returns)."""
    if isinstance(exc, MissingDriverError):
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.import_error, **extra)
    details = dict(exc.details)
    details.update(extra)
    module.fail_json(msg=exc.msg, **details)
