# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metrics of a scheduled pgBackRest backup (``dbops-backup pgbackrest-backup``), pure functions.

One text file per stanza, ``dbops_pgbackrest_<stanza>.prom``, in node_exporter's textfile
directory on the repository host. Each run sets the ``last_run`` gauges of its own backup type and
re-reads every other figure from ``pgbackrest info --output=json``:

- ``dbops_pgbackrest_backup_last_run_{success,timestamp_seconds,exit_code,duration_seconds}``
  ``{stanza,type}``: the wrapper's last run of that type (exit code = pgBackRest's);
- ``dbops_pgbackrest_backup_last_success_timestamp_seconds{stanza,type}``: end of the newest backup of
  that type in the repository; ``..._duration_seconds``, ``..._size_bytes`` (database size),
  ``..._delta_bytes`` (what it copied), ``..._repo_delta_bytes`` (what it added to the repository),
  ``dbops_pgbackrest_backups{stanza,type}`` (how many the repository holds);
- ``dbops_pgbackrest_newest_backup_timestamp_seconds{stanza}``: end of the newest backup of any type;
- ``dbops_pgbackrest_stanza_status{stanza}`` (pgBackRest's status code, 0 ok) and
  ``dbops_pgbackrest_info_success{stanza}`` (1 when this run could read ``info``).

A figure this run did not produce keeps its previous value (read back from the file): a failed run
keeps the last success timestamp, and a failed ``info`` after a successful backup hides nothing: the
run's own success is a ``last_run`` gauge and its end time becomes the type's last success.
Backups pgBackRest marks with ``error`` (page checksum errors) do not count as successes.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._metrics import Metric
from ansible_collections.dbops.datastores.plugins.module_utils._pgbackrest import STANZA_RE

BACKUP_TYPES = ("full", "diff", "incr")
PREFIX = "dbops_pgbackrest_"

Labels = tuple[tuple[str, str], ...]


def filename(stanza: str) -> str:
    """The stanza's metrics file (stanza names are letters, digits, ``_``, ``.`` and ``-``)."""
    if not STANZA_RE.match(stanza or ""):
        raise DbopsError(f"write pgbackrest metrics: {stanza!r} is not a stanza name")
    return f"{PREFIX}{stanza}.prom"


def _family(suffix: str, help_text: str) -> Metric:
    return Metric(PREFIX + suffix, help_text)


def families() -> list[Metric]:
    """Every family the file holds (HELP/TYPE written even without samples)."""
    return [
        _family("backup_last_run_success",
                "1 when the last scheduled pgBackRest backup of this type succeeded, 0 when it failed."),
        _family("backup_last_run_timestamp_seconds",
                "When the last scheduled pgBackRest backup of this type ended."),
        _family("backup_last_run_exit_code",
                "pgBackRest's exit code of the last scheduled backup of this type."),
        _family("backup_last_run_duration_seconds", "Duration of the last scheduled backup of this type."),
        _family("backup_last_success_timestamp_seconds",
                "End of the newest backup of this type in the repository (pgbackrest info)."),
        _family("backup_duration_seconds", "Duration of the newest backup of this type (pgbackrest info)."),
        _family("backup_size_bytes", "Database size in the newest backup of this type."),
        _family("backup_delta_bytes", "Bytes the newest backup of this type copied from the database."),
        _family("backup_repo_delta_bytes",
                "Bytes the newest backup of this type added to the repository (compressed)."),
        _family("backups", "Backups of this type the repository holds."),
        _family("newest_backup_timestamp_seconds",
                "End of the newest backup of any type in the repository (its age: time() minus this)."),
        _family("stanza_status", "pgBackRest's status code of the stanza (0 ok, 2 no valid backup, ...)."),
        _family("info_success", "1 when the last run could read pgbackrest info, 0 when it could not."),
    ]


def find_stanza(stanzas: list[dict[str, Any]], stanza: str) -> dict[str, Any] | None:
    """The stanza's entry in ``pgbackrest info --output=json`` (a list of stanzas)."""
    for item in stanzas:
        if isinstance(item, dict) and item.get("name") == stanza:
            return item
    return None


def _stop(backup: dict[str, Any]) -> int | None:
    stop = (backup.get("timestamp") or {}).get("stop")
    return stop if isinstance(stop, int) and not isinstance(stop, bool) else None


def newest_by_type(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The newest finished backup (no ``error``) of each type pgBackRest lists."""
    newest: dict[str, dict[str, Any]] = {}
    for backup in raw.get("backup") or []:
        if not isinstance(backup, dict) or backup.get("error") or _stop(backup) is None:
            continue
        kind = str(backup.get("type"))
        if kind not in newest or _stop(backup) >= _stop(newest[kind]):  # type: ignore[operator]
            newest[kind] = backup
    return newest


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_samples(stanza: str, backup_type: str, code: int, *, duration: float, now: float,
                raw: dict[str, Any] | None) -> list[Metric]:
    """The fresh samples of one run: its ``last_run`` gauges and, with ``raw`` (the stanza's info
    entry; None when ``info`` failed), every figure of the repository's backups."""
    if backup_type not in BACKUP_TYPES:
        raise DbopsError(f"write pgbackrest metrics: type must be one of {', '.join(BACKUP_TYPES)}")
    result = families()
    m = {f.name: f for f in result}
    run = {"stanza": stanza, "type": backup_type}
    m[PREFIX + "backup_last_run_success"].add(code == 0, **run)
    m[PREFIX + "backup_last_run_timestamp_seconds"].add(now, **run)
    m[PREFIX + "backup_last_run_exit_code"].add(code, **run)
    m[PREFIX + "backup_last_run_duration_seconds"].add(round(duration, 3), **run)
    m[PREFIX + "info_success"].add(raw is not None, stanza=stanza)
    if raw is None:
        if code == 0:  # the backup ended now; info could not say more
            m[PREFIX + "backup_last_success_timestamp_seconds"].add(now, **run)
            m[PREFIX + "newest_backup_timestamp_seconds"].add(now, stanza=stanza)
        return result
    status = (raw.get("status") or {}).get("code")
    m[PREFIX + "stanza_status"].add(_number(status), stanza=stanza)
    newest = newest_by_type(raw)
    counts: dict[str, int] = {}
    for backup in raw.get("backup") or []:
        if isinstance(backup, dict) and not backup.get("error"):
            counts[str(backup.get("type"))] = counts.get(str(backup.get("type")), 0) + 1
    for kind in BACKUP_TYPES:
        labels = {"stanza": stanza, "type": kind}
        m[PREFIX + "backups"].add(counts.get(kind, 0), **labels)
        backup = newest.get(kind)
        if backup is None:
            continue
        stamp = backup.get("timestamp") or {}
        info = backup.get("info") or {}
        m[PREFIX + "backup_last_success_timestamp_seconds"].add(_stop(backup), **labels)
        start = _number(stamp.get("start"))
        m[PREFIX + "backup_duration_seconds"].add(None if start is None else _stop(backup) - start, **labels)
        m[PREFIX + "backup_size_bytes"].add(_number(info.get("size")), **labels)
        m[PREFIX + "backup_delta_bytes"].add(_number(info.get("delta")), **labels)
        repo_delta = _number((info.get("repository") or {}).get("delta"))
        m[PREFIX + "backup_repo_delta_bytes"].add(repo_delta, **labels)
    if newest:
        m[PREFIX + "newest_backup_timestamp_seconds"].add(max(_stop(b) or 0 for b in newest.values()),
                                                          stanza=stanza)
    return result


def carry_over(fresh: list[Metric], previous: dict[tuple[str, Labels], float]) -> list[Metric]:
    """Add the previous samples (from :func:`_metrics.read_samples`) of every label set this run
    did not set: the other types' last runs, and what a failed ``info`` could not tell."""
    by_name = {m.name: m for m in fresh}
    for (name, labels), value in sorted(previous.items()):
        metric = by_name.get(name)
        if metric is None:
            continue
        if not any(tuple(sorted(sample[0].items())) == labels for sample in metric.samples):
            metric.samples.append((dict(labels), value))
    for metric in fresh:
        metric.samples.sort(key=lambda sample: sorted(sample[0].items()))
    return fresh
