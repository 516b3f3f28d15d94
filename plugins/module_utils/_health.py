# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health scoring model shared by ``pg_health_info`` and ``mongodb_health_info``.

The checks themselves live per engine: ``_pg_health_checks`` (:data:`PG_CHECKS`, ``PG_THRESHOLDS``,
``evaluate_pg``) and ``_mongodb_health_checks`` (``MONGODB_CHECKS``, ``MONGODB_THRESHOLDS``,
``evaluate_mongodb``); this file holds what both use.

Pure functions over the facts the modules gather (no server, no Ansible):

- Each engine has a list of :class:`Check` (id, title, weight). A check looks at the facts and
  returns a :class:`CheckResult`: ``ok``, ``warning``, ``critical`` or ``skipped`` (the server did
  not report what the check needs, or there is nothing to judge, e.g. no replicas), with
  :class:`Finding` items that say what is wrong, on which object, the measured value, the threshold
  and the fix an operator would apply.
- The score is ``100 * sum(weight * credit) / sum(weight)`` over the checks that were evaluated,
  with credit 1 for ``ok``, 0.5 for ``warning`` and 0 for ``critical``; skipped checks do not count
  either way. ``status`` is the worst severity found. ``info`` findings (e.g. "pg_stat_statements is
  not installed") never change the score.
- Thresholds are plain dicts; ``PG_THRESHOLDS`` / ``MONGODB_THRESHOLDS`` hold the defaults
  (the modules expose each key as a sub-option of ``thresholds``). docs/health.md documents them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

OK = "ok"
INFO = "info"
WARNING = "warning"
CRITICAL = "critical"
SKIPPED = "skipped"

SEVERITY_RANK = {OK: 0, INFO: 0, WARNING: 1, CRITICAL: 2}
CREDIT = {OK: 1.0, WARNING: 0.5, CRITICAL: 0.0}

GIB = 1024**3
MIB = 1024**2


@dataclass
class Finding:
    """One problem found by a check."""

    check: str
    severity: str
    message: str
    fix: str
    object: str | None = None
    value: Any = None
    threshold: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "object": self.object,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "fix": self.fix,
        }


@dataclass
class CheckResult:
    """What one check concluded."""

    status: str
    findings: list[Finding] = field(default_factory=list)
    reason: str | None = None


@dataclass(frozen=True)
class Check:
    """A scored check: ``run(facts, thresholds)`` returns its result."""

    id: str
    title: str
    weight: int
    run: Callable[[dict[str, Any], dict[str, float]], CheckResult]


def classify(value: float | None, warning: float, critical: float, higher_is_worse: bool = True) -> str:
    """``ok``/``warning``/``critical`` for ``value`` against two thresholds (inclusive)."""
    if value is None:
        return OK
    if higher_is_worse:
        if value >= critical:
            return CRITICAL
        return WARNING if value >= warning else OK
    if value <= critical:
        return CRITICAL
    return WARNING if value <= warning else OK


def worst(statuses: list[str]) -> str:
    """The most severe of ``statuses`` (``ok`` for an empty list)."""
    result = OK
    for status in statuses:
        if SEVERITY_RANK.get(status, 0) > SEVERITY_RANK[result]:
            result = status
    return result


def merge_thresholds(defaults: dict[str, float], overrides: dict[str, Any] | None) -> dict[str, float]:
    """Defaults with the non-null values of ``overrides`` (module sub-options arrive as None)."""
    merged = dict(defaults)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in defaults:
            raise ValueError(f"unknown threshold {key!r}")
        merged[key] = value
    return merged


def result_of(findings: list[Finding]) -> CheckResult:
    return CheckResult(worst([f.severity for f in findings]), findings)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def human_bytes(value: float | None) -> str:
    """``1.5 GiB`` style sizes for messages."""
    if value is None:
        return "n/a"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop always returns


def observed_seconds(since: Any, now: Any) -> float | None:
    """Seconds between two ISO 8601 times (statistics start, collection time); None if unknown."""
    import datetime  # noqa: PLC0415 - only this helper needs it

    def parse(value: Any) -> datetime.datetime | None:
        if not value:
            return None
        try:
            parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)

    start, end = parse(since), parse(now)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def not_enough_data(observed: float | None, window: float) -> CheckResult | None:
    """A skipped result while the statistics cover less than ``window`` seconds (else None)."""
    if observed is None or observed >= window:
        return None
    return CheckResult(
        SKIPPED,
        reason=f"not enough data: the statistics cover {human_seconds(observed)}, "
        f"the observation window is {human_seconds(window)}",
    )


def human_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    seconds = float(value)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


# ---------------------------------------------------------------------------------------------
# Checks shared in shape by both engines
# ---------------------------------------------------------------------------------------------


def connections_check(prefix: str, fix: str) -> Callable[[dict[str, Any], dict[str, float]], CheckResult]:
    def run(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
        conn = facts.get("connections") or {}
        usage = conn.get("usage_percent")
        if usage is None:
            return CheckResult(SKIPPED, reason="the server does not report its connection limit")
        severity = classify(usage, t["connections_warning_percent"], t["connections_critical_percent"])
        if severity == OK:
            return CheckResult(OK)
        threshold = t[f"connections_{severity}_percent"]
        return result_of(
            [
                Finding(
                    "connections",
                    severity,
                    f"{conn.get('current')} of {conn.get('max')} {prefix} connections in use ({usage:.1f}%)",
                    fix,
                    value=rounded(usage),
                    threshold=threshold,
                )
            ]
        )

    return run


Describe = Callable[[dict[str, Any]], "tuple[str, str]"]
Fix = Callable[[dict[str, Any]], str]


def duration_findings(
    check: str,
    items: list[dict[str, Any]],
    key: str,
    limits: tuple[float, float],
    *,
    describe: Describe,
    fix: Fix,
) -> CheckResult:
    """One finding per item whose ``key`` (seconds) reaches the (warning, critical) ``limits``."""
    warn, crit = limits
    findings = []
    for item in items:
        seconds = item.get(key)
        severity = classify(seconds, warn, crit)
        if severity == OK:
            continue
        obj, message = describe(item)
        findings.append(
            Finding(
                check,
                severity,
                message,
                fix(item),
                object=obj,
                value=rounded(seconds),
                threshold=warn if severity == WARNING else crit,
            )
        )
    return result_of(findings)

# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def evaluate(checks: list[Check], facts: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """Run ``checks`` over ``facts``: score, status, per-check results and all findings."""
    results = []
    findings: list[Finding] = []
    earned = 0.0
    possible = 0
    # Checks the server's version cannot evaluate (facts "unavailable_checks": id -> reason).
    unavailable = facts.get("unavailable_checks") or {}
    for check in checks:
        if check.id in unavailable:
            result = CheckResult(SKIPPED, reason=unavailable[check.id])
        else:
            result = check.run(facts, thresholds)
        findings.extend(result.findings)
        if result.status != SKIPPED:
            earned += check.weight * CREDIT[result.status]
            possible += check.weight
        results.append(
            {
                "id": check.id,
                "title": check.title,
                "weight": check.weight,
                "status": result.status,
                "reason": result.reason,
                "findings": len([f for f in result.findings if f.severity != INFO]),
            }
        )
    score = round(100.0 * earned / possible) if possible else None
    findings.sort(key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.check, str(f.object)))
    status = worst([f.severity for f in findings])
    return {
        "score": score,
        "status": status,
        "checks": results,
        "findings": [f.to_dict() for f in findings],
    }


def threshold_is_float(key: str) -> bool:
    """Percentages and durations take fractions; counts and byte sizes are integers."""
    return key.endswith(("_percent", "_seconds", "_ms"))


def threshold_argument_spec(defaults: dict[str, float]) -> dict[str, Any]:
    """The ``thresholds`` option: one sub-option per key, typed like its default."""
    options: dict[str, Any] = {}
    for key, value in defaults.items():
        if threshold_is_float(key):
            options[key] = {"type": "float", "default": float(value)}
        else:
            options[key] = {"type": "int", "default": int(value)}
    return {"type": "dict", "default": {}, "options": options}
