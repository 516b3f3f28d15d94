# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import datetime as dt
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.dbops.datastores.plugins.module_utils import _migrate_policy as policy
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def maintenance_window(windows: Any, now: str | None = None) -> dict[str, Any]:
    """Whether one of ``windows`` is open at ``now`` (ISO 8601 with offset; default: the current time)."""
    try:
        parsed = policy.parse_windows(windows if windows is not None else [])
        if now in (None, ""):
            moment = dt.datetime.now(dt.timezone.utc)
        else:
            try:
                moment = dt.datetime.fromisoformat(str(now))
            except ValueError:
                raise DbopsError(f"evaluate maintenance windows: now={now!r} is not an ISO 8601"
                                 " time") from None
        return policy.window_state(parsed, moment)
    except DbopsError as exc:
        raise AnsibleFilterError(exc.msg) from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"maintenance_window": maintenance_window}
