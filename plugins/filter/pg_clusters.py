# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks as checks


def pg_clusters(nodes: Any, max_retained_bytes: Any = 1073741824) -> dict[str, Any]:
    """PostgreSQL clusters from each node's ``replication`` facts (inventory name -> facts)."""
    if not isinstance(nodes, dict):
        raise AnsibleFilterError("pg_clusters: expected a mapping of inventory name to replication facts")
    try:
        limit = int(max_retained_bytes)
    except (TypeError, ValueError):
        raise AnsibleFilterError(
            f"pg_clusters: max_retained_bytes must be an integer, not {max_retained_bytes!r}") from None
    return checks.pg_clusters({str(k): v for k, v in nodes.items() if isinstance(v, dict)}, limit)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"pg_clusters": pg_clusters}
