# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MongoDB health checks of ``mongodb_health_info`` and their default thresholds.

Each check is a pure function over the facts of ``_mongodb_health.gather``; the scoring model
(:class:`Check`, :func:`evaluate`, severities) is ``_health``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._health import (
    CRITICAL,
    MIB,
    OK,
    SKIPPED,
    WARNING,
    Check,
    CheckResult,
    Finding,
    classify,
    connections_check,
    duration_findings,
    evaluate,
    human_bytes,
    human_seconds,
    merge_thresholds,
    not_enough_data,
    observed_seconds,
    result_of,
    rounded,
)

# Defaults for mongodb_health_info.
MONGODB_THRESHOLDS: dict[str, float] = {
    "connections_warning_percent": 80,
    "connections_critical_percent": 95,
    "cache_used_warning_percent": 90,
    "cache_used_critical_percent": 95,
    "long_operation_warning_seconds": 60,
    "long_operation_critical_seconds": 300,
    "queued_operations_warning": 10,
    "queued_operations_critical": 50,
    "unused_index_min_bytes": MIB,
    "unused_index_min_observation_seconds": 7 * 86400,
    "replication_lag_warning_seconds": 30,
    "replication_lag_critical_seconds": 300,
}


# ---------------------------------------------------------------------------------------------
# MongoDB checks
# ---------------------------------------------------------------------------------------------


def _mongo_cache(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    cache = facts.get("cache") or {}
    used = cache.get("used_percent")
    if used is None:
        return CheckResult(SKIPPED, reason="serverStatus does not report wiredTiger.cache")
    severity = classify(used, t["cache_used_warning_percent"], t["cache_used_critical_percent"])
    if severity == OK:
        return CheckResult(OK)
    return result_of(
        [
            Finding(
                "cache_usage",
                severity,
                f"WiredTiger cache {used:.1f}% full ({human_bytes(cache.get('bytes'))} of "
                f"{human_bytes(cache.get('max_bytes'))}); application threads start evicting at 95%",
                "Raise storage.wiredTiger.engineConfig.cacheSizeGB (or the host's memory), "
                "or shrink the working "
                "set: add indexes for collection scans, archive cold data.",
                value=rounded(used),
                threshold=t[f"cache_used_{severity}_percent"],
            )
        ]
    )


def _mongo_long_operations(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    ops = facts.get("long_operations")
    if ops is None:
        return CheckResult(SKIPPED, reason="currentOp is not available")
    return duration_findings(
        "long_operations",
        ops,
        "secs_running",
        (t["long_operation_warning_seconds"], t["long_operation_critical_seconds"]),
        describe=lambda i: (
            f"opid {i.get('opid')}",
            f"{i.get('op')} on {i.get('ns') or '?'} running for {human_seconds(i.get('secs_running'))}",
        ),
        fix=lambda i: (
            f"Check it with db.currentOp({{opid: {i.get('opid')!r}}}); stop it with "
            f"db.killOp({i.get('opid')!r}) if it is runaway; set maxTimeMS in the application."
        ),
    )


def _mongo_queues(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    queued = (facts.get("operations") or {}).get("queued")
    if queued is None:
        return CheckResult(SKIPPED, reason="serverStatus does not report globalLock.currentQueue")
    severity = classify(queued, t["queued_operations_warning"], t["queued_operations_critical"])
    if severity == OK:
        return CheckResult(OK)
    return result_of(
        [
            Finding(
                "queued_operations",
                severity,
                f"{queued} operations queued waiting for locks",
                "Find the operation holding the lock with db.currentOp({waitingForLock: true}); look for "
                "collection scans and long writes.",
                value=queued,
                threshold=t[f"queued_operations_{severity}"],
            )
        ]
    )


def _mongo_unused_indexes(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    if facts.get("unused_indexes") is None:
        return CheckResult(SKIPPED, reason="$indexStats is not available")
    findings = []
    young = []
    for index in facts.get("unused_indexes") or []:
        observed = observed_seconds(index.get("since"), facts.get("collected_at"))
        if observed is not None and observed < t["unused_index_min_observation_seconds"]:
            young.append(observed)
            continue
        size = index.get("size_bytes")
        if size is not None and size < t["unused_index_min_bytes"]:
            continue
        name = f"{index.get('database')}.{index.get('collection')}"
        findings.append(
            Finding(
                "unused_indexes",
                WARNING,
                f"index {index.get('name')} has no accesses since "
                f"{index.get('since') or 'the server started'}"
                + (f", {human_bytes(size)}" if size is not None else ""),
                f"Confirm on every member, hide it first with db.{index.get('collection')}.hideIndex("
                f"'{index.get('name')}'), then dropIndex if nothing slows down.",
                object=f"{name}.{index.get('name')}",
                value=size,
                threshold=t["unused_index_min_bytes"],
            )
        )
    if young and not findings:
        return not_enough_data(max(young), t["unused_index_min_observation_seconds"]) or result_of(findings)
    return result_of(findings)


def _mongo_replication_lag(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    repl = facts.get("replication") or {}
    members = [m for m in repl.get("members") or [] if m.get("state_str") == "SECONDARY"]
    if not members:
        return CheckResult(SKIPPED, reason="no secondaries" if repl.get("set") else "not a replica set")
    return duration_findings(
        "replication_lag",
        members,
        "lag_seconds",
        (t["replication_lag_warning_seconds"], t["replication_lag_critical_seconds"]),
        describe=lambda m: (
            str(m.get("name")),
            f"secondary is {human_seconds(m.get('lag_seconds'))} behind the primary",
        ),
        fix=lambda m: (
            "Check the secondary's disk, network and oplog window "
            "(rs.printSecondaryReplicationInfo()); make sure the oplog covers the lag."
        ),
    )


def _mongo_members(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    repl = facts.get("replication") or {}
    if not repl.get("members"):
        return CheckResult(SKIPPED, reason="not a replica set")
    findings = []
    for member in repl["members"]:
        state = member.get("state_str")
        if member.get("health", 1) and state in ("PRIMARY", "SECONDARY", "ARBITER"):
            continue
        findings.append(
            Finding(
                "replica_members",
                CRITICAL,
                f"member is {state} (health {member.get('health')})",
                "Check the member's mongod log and connectivity; "
                "a member in RECOVERING for long needs a resync.",
                object=str(member.get("name")),
                value=state,
            )
        )
    if not any(m.get("state_str") == "PRIMARY" for m in repl["members"]):
        findings.append(
            Finding(
                "replica_members",
                CRITICAL,
                "the replica set has no primary",
                "Check that a majority of voting members are up and can reach each other.",
                object=str(repl.get("set")),
            )
        )
    return result_of(findings)


MONGODB_CHECKS: list[Check] = [
    Check(
        "connections",
        "Connections in use",
        20,
        connections_check(
            "possible",
            "Lower the drivers' maxPoolSize or add mongos/members; raise net.maxIncomingConnections and the "
            "process file limit only after checking for connection leaks.",
        ),
    ),
    Check("cache_usage", "WiredTiger cache usage", 15, _mongo_cache),
    Check("long_operations", "Long-running operations", 20, _mongo_long_operations),
    Check("queued_operations", "Operations queued on locks", 10, _mongo_queues),
    Check("unused_indexes", "Unused indexes", 10, _mongo_unused_indexes),
    Check("replication_lag", "Replication lag", 15, _mongo_replication_lag),
    Check("replica_members", "Replica set members", 10, _mongo_members),
]


def evaluate_mongodb(facts: dict[str, Any], thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    return evaluate(MONGODB_CHECKS, facts, merge_thresholds(MONGODB_THRESHOLDS, thresholds))
