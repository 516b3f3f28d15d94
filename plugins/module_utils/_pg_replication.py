# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming replication: what a node's data directory is, and what the role must do with it.

The decision is a pure function of facts read from the node (``read_local_state``) and the
primary's system identifier, so the rules that decide whether a data directory may be replaced
are unit-tested without a server:

- ``none``: already a standby (``standby.signal``) of the same system as the primary;
- ``rebuild``: nothing worth keeping (no cluster yet, or a cluster the role created for this
  standby and never used), or the operator allowed it; or the operator asked for it (a standby of
  a primary restored to an earlier point in time: same system, but its timeline cannot follow);
- ``refuse``: a data directory that is not a standby of this primary and holds data.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

# Written by the role into a data directory it created with pg_createcluster for a standby: the
# directory holds nothing but initdb's output and may be replaced by a base backup.
NEW_CLUSTER_MARKER = "dbops-new-standby-cluster"

_SYSID_RE = re.compile(r"^Database system identifier:\s*(\d+)\s*$", re.M)
_CHECKPOINT_RE = re.compile(r"^Latest checkpoint location:\s*([0-9A-Fa-f]+/[0-9A-Fa-f]+)\s*$", re.M)
_STATE_RE = re.compile(r"^Database cluster state:\s*(.+?)\s*$", re.M)


@dataclass
class LocalState:
    """What a node's data directory holds (read from disk, no server needed)."""

    data_directory: str
    initialized: bool
    system_identifier: str | None
    standby_signal: bool
    new_cluster_marker: bool
    # From pg_controldata: "shut down", "in production", "in archive recovery", ... and the
    # position of the latest checkpoint (after a clean shutdown: the last WAL record written).
    cluster_state: str | None = None
    checkpoint_lsn: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    """What the role does with a standby's data directory, and why."""

    action: str  # none | rebuild | refuse
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_system_identifier(controldata: str) -> str:
    """The "Database system identifier" line of ``pg_controldata`` output."""
    match = _SYSID_RE.search(controldata)
    if not match:
        raise DbopsError("read the system identifier: pg_controldata printed no identifier")
    return match.group(1)


def decide_standby(local: LocalState, primary_system_identifier: str | None,
                   allow_rebuild: bool, force_rebuild: bool = False) -> Decision:
    """Decide whether a standby's data directory is kept, rebuilt or must not be touched.

    ``force_rebuild`` rebuilds even a standby of the primary's system: after a point-in-time
    restore of the primary the standbys have replayed past the new timeline's fork point.
    """
    if not local.initialized:
        return Decision("rebuild", f"{local.data_directory} holds no cluster yet")
    if local.new_cluster_marker:
        return Decision("rebuild", f"{local.data_directory} is the empty cluster created for this standby")
    if force_rebuild:
        return Decision(
            "rebuild",
            f"{local.data_directory} holds system {local.system_identifier}; a rebuild was requested "
            "(postgresql_replication_force_rebuild)",
        )
    same_system = (
        primary_system_identifier is not None
        and local.system_identifier == primary_system_identifier
    )
    if same_system and local.standby_signal:
        return Decision("none", f"already a standby of system {primary_system_identifier}")
    if same_system:
        what = (
            f"{local.data_directory} holds this cluster's system {primary_system_identifier} but is "
            "not a standby (a former or promoted primary)"
        )
    elif primary_system_identifier is None:
        what = (
            f"{local.data_directory} holds system {local.system_identifier} and the primary has no "
            "cluster yet to compare it with"
        )
    else:
        what = (
            f"{local.data_directory} holds a different system {local.system_identifier} than the "
            f"primary ({primary_system_identifier})"
            + (" (a standby of another cluster)" if local.standby_signal else "")
        )
    if allow_rebuild:
        return Decision("rebuild", f"{what}; postgresql_replication_allow_rebuild is set")
    return Decision(
        "refuse",
        f"{what}; a base backup would wipe it. Rejoin a former primary with "
        "dbops.datastores.switchover, or set postgresql_replication_allow_rebuild=true for this host",
    )


def read_local_state(data_directory: str, bin_dir: str) -> LocalState:
    """Read a data directory: PG_VERSION, standby.signal, the marker, the system identifier."""
    initialized = os.path.isfile(os.path.join(data_directory, "PG_VERSION"))
    sysid = state = checkpoint = None
    if initialized:
        argv = [os.path.join(bin_dir, "pg_controldata"), "-D", data_directory]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  env={**os.environ, "LC_ALL": "C"})
        except OSError as exc:
            raise DbopsError(f"read the system identifier of {data_directory}: {exc}") from exc
        if proc.returncode != 0:
            raise DbopsError(
                f"read the system identifier of {data_directory}: pg_controldata failed: "
                f"{proc.stderr.strip()}"
            )
        sysid = parse_system_identifier(proc.stdout)
        state_match, checkpoint_match = _STATE_RE.search(proc.stdout), _CHECKPOINT_RE.search(proc.stdout)
        state = state_match.group(1) if state_match else None
        checkpoint = checkpoint_match.group(1) if checkpoint_match else None
    return LocalState(
        data_directory=data_directory,
        initialized=initialized,
        system_identifier=sysid,
        standby_signal=os.path.isfile(os.path.join(data_directory, "standby.signal")),
        new_cluster_marker=os.path.isfile(os.path.join(data_directory, NEW_CLUSTER_MARKER)),
        cluster_state=state,
        checkpoint_lsn=checkpoint,
    )


def identify_primary(params: dict[str, Any], passfile: str | None) -> dict[str, Any]:
    """IDENTIFY_SYSTEM over a replication connection: proves the standby's login and pg_hba."""
    _postgres.require_driver()
    import psycopg2  # noqa: PLC0415 - only after require_driver()
    import psycopg2.extras  # noqa: PLC0415

    kwargs = _postgres.conn_kwargs(params)
    kwargs.pop("dbname", None)
    if passfile:
        kwargs["passfile"] = passfile
    target = _postgres.describe_target({**kwargs, "dbname": "replication"})
    try:
        conn = psycopg2.connect(
            connection_factory=psycopg2.extras.PhysicalReplicationConnection, **kwargs
        )
    except psycopg2.Error as exc:
        raise DbopsError(_postgres.connect_error_message(str(exc), target)) from exc
    try:
        with conn.cursor() as cur:
            cur.execute("IDENTIFY_SYSTEM")
            row = cur.fetchone()
    except psycopg2.Error as exc:
        raise DbopsError(f"identify the primary at {target}: {str(exc).strip()}") from exc
    finally:
        conn.close()
    if row is None:  # pragma: no cover - the server always answers
        raise DbopsError(f"identify the primary at {target}: no answer")
    return {"system_identifier": str(row[0]), "timeline": int(row[1]), "wal_lsn": row[2]}
