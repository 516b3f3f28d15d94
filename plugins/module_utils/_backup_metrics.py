# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a ``dbops-backup`` run leaves behind for people: Prometheus text files and a webhook.

:func:`after_run` is called once at the end of every run, whatever happened (a crash included),
with the run's JSON log line as a dict. It

- writes the text files for node_exporter's textfile collector (config ``metrics.textfile_dir``),
  one file per kind of step so that separately scheduled commands do not overwrite each other's
  metrics: ``dbops_backup_run.prom`` (every command), ``dbops_backup_jobs.prom`` (backup/run),
  ``dbops_backup_verify.prom`` (verify, and run/backup with ``after_backup``),
  ``dbops_backup_retention.prom`` (retention/run) and ``dbops_backup_offhost.prom`` (every command
  that read the off-host repository). Label sets this run did not touch (another
  ``--only`` job, another command) keep their previous samples; the last success and last failure
  timestamps carry over from the previous file;
- posts a notification to ``notify.webhook_url`` when the run failed (generic JSON, or a Slack
  ``text`` message with ``notify.format: slack``): program, host, command, and per failed step the
  engine, database and error message, never a password or query text;
- never changes what happened to the backup: its own failures are added to the log line as
  ``metrics_error`` / ``notify_error`` and the exit code stays the backup's.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import urllib.parse
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _metrics
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._metrics import Metric

METRICS_KEYS = {"textfile_dir", "file_mode"}
NOTIFY_KEYS = {"webhook_url", "format", "on", "timeout"}
NOTIFY_FORMATS = ("json", "slack")
NOTIFY_ON = ("failure", "always")
MESSAGE_LIMIT = 300

Labels = tuple[tuple[str, str], ...]


def check_config(config: dict[str, Any], where: str) -> None:
    """Raise DbopsError for a wrong ``metrics`` / ``notify`` section (called while loading the config)."""
    for section, keys in (("metrics", METRICS_KEYS), ("notify", NOTIFY_KEYS)):
        value = config.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise DbopsError(f"read config {where} {section}: expected a mapping")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise DbopsError(f"read config {where} {section}: unknown option(s) {', '.join(unknown)}")
    metrics = config.get("metrics")
    if metrics is None:
        metrics = {}
    elif not isinstance(metrics.get("textfile_dir"), str):
        raise DbopsError(f"read config {where} metrics: textfile_dir (a directory) is required")
    mode = metrics.get("file_mode", "0644")
    if not isinstance(mode, str) or len(mode) != 4 or any(c not in "01234567" for c in mode):
        raise DbopsError(f"read config {where} metrics: file_mode must be an octal string like 0644")
    notify = config.get("notify")
    if notify is not None:
        url = notify.get("webhook_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DbopsError(f"read config {where} notify: webhook_url must be an http(s) URL")
        if notify.get("format", "json") not in NOTIFY_FORMATS:
            raise DbopsError(f"read config {where} notify: format must be one of {', '.join(NOTIFY_FORMATS)}")
        if notify.get("on", "failure") not in NOTIFY_ON:
            raise DbopsError(f"read config {where} notify: on must be one of {', '.join(NOTIFY_ON)}")
        timeout = notify.get("timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 120:
            raise DbopsError(f"read config {where} notify: timeout must be a number of seconds (0-120]")


# --------------------------------------------------------------------------- metrics

def _family(name: str, help_text: str) -> Metric:
    return Metric(name, help_text)


def _job_families() -> list[Metric]:
    return [
        _family("dbops_backup_last_run_timestamp_seconds", "When the last backup attempt ended."),
        _family("dbops_backup_success", "1 when the last backup attempt succeeded, 0 when it failed."),
        _family("dbops_backup_last_success_timestamp_seconds", "When a backup attempt last succeeded."),
        _family("dbops_backup_last_failure_timestamp_seconds", "When a backup attempt last failed."),
        _family("dbops_backup_duration_seconds", "Duration of the last backup attempt."),
        _family("dbops_backup_size_bytes", "Size of the last successful backup."),
        _family("dbops_backup_other_node",
                "1 when the job runs on another node of the cluster (its `from`), 0 when it runs here."),
    ]


def _verify_families() -> list[Metric]:
    return [
        _family("dbops_backup_verify_last_run_timestamp_seconds", "When the last verification ended."),
        _family("dbops_backup_verify_success", "1 when the last verification passed, 0 when it failed."),
        _family("dbops_backup_verify_last_success_timestamp_seconds", "When a verification last passed."),
        _family("dbops_backup_verify_last_failure_timestamp_seconds", "When a verification last failed."),
        _family("dbops_backup_restore_test", "1 when the last passed verification was a restore test."),
        _family("dbops_backup_restore_test_duration_seconds",
                "Time the last restore test took to restore the backup (the measured RTO)."),
    ]


def _retention_families() -> list[Metric]:
    return [
        _family("dbops_backup_retention_last_run_timestamp_seconds", "When retention last ran."),
        _family("dbops_backup_retention_success", "1 when the last retention run succeeded."),
        _family("dbops_backup_retention_kept", "Backups kept by the last retention run."),
        _family("dbops_backup_retention_removed", "Backups removed by the last retention run."),
        _family("dbops_backup_retention_removed_partials", "Stale partial backups removed by the last run."),
    ]


def _run_families() -> list[Metric]:
    return [
        _family("dbops_backup_run_last_timestamp_seconds", "When the last command of this kind ended."),
        _family("dbops_backup_run_success", "1 when the last command of this kind succeeded."),
        _family("dbops_backup_run_exit_code", "Exit code of the last command of this kind."),
        _family("dbops_backup_run_duration_seconds", "Duration of the last command of this kind."),
    ]


def _merge(families: list[Metric], previous: dict[tuple[str, Labels], float], touched: set[Labels],
           carry: tuple[str, ...]) -> list[Metric]:
    """Add the previous samples of label sets this run did not touch, and carried-over timestamps."""
    by_name = {m.name: m for m in families}
    for (name, labels), value in sorted(previous.items()):
        metric = by_name.get(name)
        if metric is None:
            continue
        fresh = any(tuple(sorted(s[0].items())) == labels for s in metric.samples)
        if labels not in touched or (name in carry and not fresh):
            metric.samples.append((dict(labels), value))
    return families


def job_metrics(log: dict[str, Any], now: float) -> tuple[list[Metric], set[Labels]]:
    families = _job_families()
    m = {f.name: f for f in families}
    touched: set[Labels] = set()
    for entry in log.get("backups") or []:
        labels = {"engine": str(entry.get("engine")), "database": str(entry.get("database"))}
        if entry.get("other_node"):
            # this node no longer takes the job (a switchover): drop its last result, keep the
            # carried-over timestamps as history, and say why they age (the alerts skip it)
            touched.add(tuple(sorted(labels.items())))
            m["dbops_backup_other_node"].add(1, **labels)
            continue
        if entry.get("skipped"):
            continue
        touched.add(tuple(sorted(labels.items())))
        m["dbops_backup_other_node"].add(0, **labels)
        ok = bool(entry.get("ok"))
        m["dbops_backup_last_run_timestamp_seconds"].add(now, **labels)
        m["dbops_backup_success"].add(ok, **labels)
        m["dbops_backup_last_success_timestamp_seconds" if ok else
          "dbops_backup_last_failure_timestamp_seconds"].add(now, **labels)
        m["dbops_backup_duration_seconds"].add(entry.get("duration_s"), **labels)
        if ok:
            m["dbops_backup_size_bytes"].add(entry.get("size"), **labels)
    return families, touched


def verify_metrics(log: dict[str, Any], now: float) -> tuple[list[Metric], set[Labels]]:
    families = _verify_families()
    m = {f.name: f for f in families}
    touched: set[Labels] = set()
    for record in log.get("verifications") or []:
        if record.get("skipped") or not record.get("engine") or not record.get("database"):
            continue
        labels = {"engine": str(record["engine"]), "database": str(record["database"])}
        key = tuple(sorted(labels.items()))
        if key in touched:
            continue
        touched.add(key)
        ok = bool(record.get("ok"))
        m["dbops_backup_verify_last_run_timestamp_seconds"].add(now, **labels)
        m["dbops_backup_verify_success"].add(ok, **labels)
        m["dbops_backup_verify_last_success_timestamp_seconds" if ok else
          "dbops_backup_verify_last_failure_timestamp_seconds"].add(now, **labels)
        if ok:
            restore = record.get("kind") == "restore"
            m["dbops_backup_restore_test"].add(restore, **labels)
            if restore:
                m["dbops_backup_restore_test_duration_seconds"].add(record.get("rto_s"), **labels)
    return families, touched


def retention_metrics(log: dict[str, Any], now: float) -> tuple[list[Metric], set[Labels]]:
    families = _retention_families()
    m = {f.name: f for f in families}
    retention = log.get("retention")
    if not isinstance(retention, dict) or retention.get("dry_run"):
        return families, set()
    ok = bool(retention.get("ok"))
    m["dbops_backup_retention_last_run_timestamp_seconds"].add(now)
    m["dbops_backup_retention_success"].add(ok)
    if ok:
        m["dbops_backup_retention_kept"].add(retention.get("kept"))
        m["dbops_backup_retention_removed"].add(len(retention.get("removed") or []))
        m["dbops_backup_retention_removed_partials"].add(len(retention.get("removed_partials") or []))
    return families, {()}


def _offhost_families() -> list[Metric]:
    return [
        _family("dbops_backup_offhost_last_run_timestamp_seconds",
                "When the off-host repository was last used."),
        _family("dbops_backup_offhost_success", "1 when the last use of the off-host repository succeeded."),
        _family("dbops_backup_offhost_newest_timestamp_seconds",
                "Start of the newest backup with an off-host copy (its age: time() minus this)."),
        _family("dbops_backup_offhost_copies", "Off-host copies of the database."),
    ]


def offhost_metrics(log: dict[str, Any], now: float) -> tuple[list[Metric], set[Labels]]:
    families = _offhost_families()
    m = {f.name: f for f in families}
    offhost = log.get("offhost")
    if not isinstance(offhost, dict):
        return families, set()
    m["dbops_backup_offhost_last_run_timestamp_seconds"].add(now)
    m["dbops_backup_offhost_success"].add(bool(offhost.get("ok")))
    touched: set[Labels] = {()}
    for group in offhost.get("groups") or []:
        labels = {"engine": str(group.get("engine")), "database": str(group.get("database"))}
        touched.add(tuple(sorted(labels.items())))
        newest = now - float(group.get("latest_age_s") or 0)
        m["dbops_backup_offhost_newest_timestamp_seconds"].add(newest, **labels)
        m["dbops_backup_offhost_copies"].add(group.get("count"), **labels)
    return families, touched


def run_metrics(log: dict[str, Any], code: int, now: float) -> tuple[list[Metric], set[Labels]]:
    families = _run_families()
    m = {f.name: f for f in families}
    labels = {"command": str(log.get("command"))}
    m["dbops_backup_run_last_timestamp_seconds"].add(now, **labels)
    m["dbops_backup_run_success"].add(code == 0, **labels)
    m["dbops_backup_run_exit_code"].add(code, **labels)
    m["dbops_backup_run_duration_seconds"].add(log.get("duration_s"), **labels)
    return families, {tuple(sorted(labels.items()))}


CARRY = ("dbops_backup_last_success_timestamp_seconds", "dbops_backup_last_failure_timestamp_seconds",
         "dbops_backup_size_bytes", "dbops_backup_verify_last_success_timestamp_seconds",
         "dbops_backup_verify_last_failure_timestamp_seconds", "dbops_backup_restore_test_duration_seconds",
         "dbops_backup_restore_test")


def write_metrics(directory: str, log: dict[str, Any], code: int, now: float | None = None,
                  mode: int = 0o644) -> list[str]:
    """Write the text files for this run; returns the paths written."""
    now = time.time() if now is None else now
    command = log.get("command")
    parts = [("dbops_backup_run.prom", run_metrics(log, code, now))]
    if command in ("run", "backup"):
        parts.append(("dbops_backup_jobs.prom", job_metrics(log, now)))
    if log.get("verifications"):
        parts.append(("dbops_backup_verify.prom", verify_metrics(log, now)))
    if command in ("run", "retention"):
        parts.append(("dbops_backup_retention.prom", retention_metrics(log, now)))
    if isinstance(log.get("offhost"), dict):
        parts.append(("dbops_backup_offhost.prom", offhost_metrics(log, now)))
    written = []
    for filename, (families, touched) in parts:
        previous = _metrics.read_samples(os.path.join(directory, filename), {f.name for f in families})
        merged = _merge(families, previous, touched, CARRY)
        written.append(_metrics.write_textfile(directory, filename, _metrics.render(merged), mode))
    return written


# --------------------------------------------------------------------------- notification

def _shorten(text: Any) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def failures(log: dict[str, Any]) -> list[dict[str, str]]:
    """The failed steps of a run: step, engine, database, error (shortened)."""
    found = []
    for entry in log.get("backups") or []:
        if not entry.get("ok"):
            found.append({"step": "backup", "engine": str(entry.get("engine")),
                          "database": str(entry.get("database")), "error": _shorten(entry.get("error"))})
    for record in log.get("verifications") or []:
        if not record.get("ok"):
            found.append({"step": "verify", "engine": str(record.get("engine")),
                          "database": str(record.get("database")), "error": _shorten(record.get("error"))})
    retention = log.get("retention")
    if isinstance(retention, dict) and not retention.get("ok", True):
        found.append({"step": "retention", "engine": "", "database": "",
                      "error": _shorten(retention.get("error"))})
    offhost = log.get("offhost")
    if isinstance(offhost, dict) and not offhost.get("ok", True):
        found.append({"step": "offhost", "engine": "", "database": "",
                      "error": _shorten(offhost.get("error"))})
    if log.get("error"):
        found.append({"step": str(log.get("command")), "engine": "", "database": "",
                      "error": _shorten(log["error"])})
    return found


def message(log: dict[str, Any], code: int, fmt: str = "json") -> dict[str, Any]:
    """The webhook body: no password, no query text, no config content."""
    failed = failures(log)
    body = {"program": "dbops-backup", "host": str(log.get("host")), "command": str(log.get("command")),
            "time": str(log.get("time")), "ok": code == 0, "exit_code": code, "failures": failed}
    if fmt != "slack":
        return body
    state = "succeeded" if code == 0 else f"FAILED (exit {code})"
    lines = [f"dbops-backup {body['command']} on {body['host']} {state}"]
    for item in failed:
        target = f" {item['engine']}:{item['database']}" if item["engine"] else ""
        lines.append(f"- {item['step']}{target}: {item['error']}")
    return {"text": "\n".join(lines)}


def post_webhook(url: str, body: dict[str, Any], timeout: float) -> None:
    """POST ``body`` as JSON (http.client: the command runs without ansible-core on the host)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DbopsError("post notification webhook: the URL must be http(s)://host/...")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    kwargs: dict[str, Any] = {"timeout": timeout}
    if parts.scheme == "https":
        kwargs["context"] = ssl.create_default_context()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection = connection_class(parts.hostname, parts.port, **kwargs)
        try:
            connection.request("POST", path, body=json.dumps(body).encode("utf-8"),
                               headers={"Content-Type": "application/json", "User-Agent": "dbops-backup"})
            response = connection.getresponse()
            response.read(65536)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DbopsError(f"post notification webhook: {reason}") from None
    if response.status >= 300:
        raise DbopsError(f"post notification webhook: HTTP {response.status}")


# --------------------------------------------------------------------------- the hook

def after_run(config: dict[str, Any], log: dict[str, Any], code: int) -> None:
    """Write metrics and notify; record this code's own failures in ``log``, never raise."""
    metrics = config.get("metrics") if isinstance(config.get("metrics"), dict) else None
    if metrics and metrics.get("textfile_dir"):
        try:
            mode = int(str(metrics.get("file_mode", "0644")), 8)
            write_metrics(metrics["textfile_dir"], log, code, mode=mode)
        except (DbopsError, OSError, ValueError) as exc:
            log["metrics_error"] = getattr(exc, "msg", None) or f"write metrics: {exc}"
    notify = config.get("notify") if isinstance(config.get("notify"), dict) else None
    if notify and notify.get("webhook_url") and (code != 0 or notify.get("on") == "always"):
        try:
            post_webhook(notify["webhook_url"], message(log, code, notify.get("format", "json")),
                         float(notify.get("timeout", 10)))
            log["notified"] = True
        except (DbopsError, ValueError) as exc:
            log["notify_error"] = getattr(exc, "msg", None) or f"post notification webhook: {exc}"
