# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks as checks
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def pg_member_name(inventory_name: Any) -> str:
    """A cluster member's replication slot and application_name, from its inventory name."""
    if not isinstance(inventory_name, str):
        raise AnsibleFilterError(f"pg_member_name: expected an inventory name, not {inventory_name!r}")
    try:
        return checks.checked_member_name(inventory_name)
    except DbopsError as exc:
        raise AnsibleFilterError(f"pg_member_name: {exc.msg}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"pg_member_name": pg_member_name}
