#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_health_info
short_description: Health facts and a 0-100 health score for a MongoDB server
version_added: 0.1.0
description:
  - Reads C(serverStatus) (connections, opcounters, memory, WiredTiger cache, lock queues),
    C(replSetGetStatus) (members and replication lag), C(dbStats) and C(collStats) (database,
    collection and index sizes), C($indexStats) (unused indexes) and C(currentOp) (long operations).
  - Fields and sections the server does not report are absent from the result (RV(absent) lists
    the serverStatus sections that were missing), never reported as 0. Checks that need them are
    skipped and do not change the score.
  - Scores the facts with the documented model shared with M(dbops.datastores.pg_health_info)
    (see C(docs/health.md) in the collection) and returns the score, the status and the findings
    with their severity and fix.
  - Works as a user with C(clusterMonitor) on C(admin) and C(read) on the application databases
    (the monitor user of the C(db_monitoring) role). Changes nothing.
options:
  databases:
    description:
      - Databases whose sizes, collections and indexes are inspected.
      - Default is every database except C(admin), C(local) and C(config).
    type: list
    elements: str
  max_collections:
    description:
      - How many collections (largest first) RV(collections) lists. Checks look at all of them.
    type: int
    default: 20
  thresholds:
    description:
      - Thresholds of the scoring model. Unset keys keep their defaults.
    type: dict
    default: {}
    suboptions:
      connections_warning_percent:
        description: Connections in use, as a percentage of current + available, that warn.
        type: float
        default: 80.0
      connections_critical_percent:
        description: Connections in use (percent) that make the check critical.
        type: float
        default: 95.0
      cache_used_warning_percent:
        description: WiredTiger cache fill (bytes in cache / maximum) that warns.
        type: float
        default: 90.0
      cache_used_critical_percent:
        description: WiredTiger cache fill that is critical.
        type: float
        default: 95.0
      long_operation_warning_seconds:
        description: Operations in C(currentOp) running this long or longer are reported and warn.
        type: float
        default: 60.0
      long_operation_critical_seconds:
        description: Operations running this long are critical.
        type: float
        default: 300.0
      queued_operations_warning:
        description: Operations queued on locks (C(globalLock.currentQueue.total)) that warn.
        type: int
        default: 10
      queued_operations_critical:
        description: Queued operations that are critical.
        type: int
        default: 50
      unused_index_min_bytes:
        description: Unused indexes smaller than this are not reported.
        type: int
        default: 1048576
      unused_index_min_observation_seconds:
        description: >-
          Unused-index findings need statistics that cover at least this long (since the statistics
          were reset or the server started); before that the check is skipped as "not enough data".
        type: float
        default: 604800.0
      replication_lag_warning_seconds:
        description: How far a secondary is behind the primary (optime) before it warns.
        type: float
        default: 30.0
      replication_lag_critical_seconds:
        description: Secondary lag that is critical.
        type: float
        default: 300.0
extends_documentation_fragment:
  - dbops.datastores.mongodb
  - dbops.datastores.attributes.info_module
seealso:
  - module: dbops.datastores.pg_health_info
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Health facts as the monitor user
  dbops.datastores.mongodb_health_info:
    login_host: mongo1.example.com
    login_user: monitor
    login_password: "{{ vault_mongo_monitor_password }}"
    databases: [app]
  register: health

- name: Report long operations from ten seconds
  dbops.datastores.mongodb_health_info:
    login_port: 27017
    thresholds:
      long_operation_warning_seconds: 10
"""

RETURN = r"""
score:
  description: Health score 0-100 (null when no check could be evaluated).
  returned: always
  type: int
  sample: 90
status:
  description: Worst severity found, C(ok), C(warning) or C(critical).
  returned: always
  type: str
  sample: ok
findings:
  description: What is wrong, most severe first, with C(check), C(severity), C(object), C(message), C(value),
    C(threshold) and C(fix).
  returned: always
  type: list
  elements: dict
checks:
  description: Each check with its weight, status (C(ok), C(warning), C(critical), C(skipped)) and reason.
  returned: always
  type: list
  elements: dict
thresholds:
  description: The thresholds used.
  returned: always
  type: dict
absent:
  description: serverStatus sections the server did not report (their facts are absent, not zero).
  returned: always
  type: list
  elements: str
  sample: [wiredTiger, globalLock, asserts]
server:
  description: Version, host, uptime, whether this node is the writable primary, replica set name.
  returned: always
  type: dict
connections:
  description: >-
    C(current), C(available), C(max) (current + available) and C(usage_percent), as reported; null
    when not reported.
  returned: always
  type: dict
  sample: {"current": 12, "available": 838848, "max": 838860, "usage_percent": 0.0}
opcounters:
  description: Operation counters since the server started, as reported; null when not reported.
  returned: always
  type: dict
memory_mb:
  description: Resident and virtual memory in MiB, as reported.
  returned: always
  type: dict
cache:
  description: >-
    WiredTiger cache bytes, dirty bytes, maximum and percentages; null when serverStatus has no
    WiredTiger section.
  returned: always
  type: dict
operations:
  description: C(queued) operations waiting for locks, when reported.
  returned: always
  type: dict
replication:
  description: >-
    Replica set name and members with state, health, optime and lag behind the primary; null for a
    standalone server.
  returned: always
  type: dict
long_operations:
  description: Client operations running at least the smaller long-operation threshold, longest first.
  returned: always
  type: list
  elements: dict
databases:
  description: >-
    Per database collections, objects and data, storage, index and total bytes (as reported by
    dbStats).
  returned: always
  type: list
  elements: dict
collections:
  description: >-
    The largest collections (O(max_collections)) with document count and data, storage and index
    sizes.
  returned: always
  type: list
  elements: dict
collections_total:
  description: Number of collections inspected.
  returned: always
  type: int
unused_indexes:
  description: >-
    Indexes with no accesses in C($indexStats) (C(_id_), unique and TTL indexes excluded); null when
    C($indexStats) is refused.
  returned: always
  type: list
  elements: dict
size_bytes:
  description: Total size of the inspected databases.
  returned: always
  type: int
errors:
  description: Sources that could not be read (the related checks are skipped).
  returned: always
  type: list
  elements: str
collected_at:
  description: When the facts were read (UTC).
  returned: always
  type: str
"""

from ansible_collections.dbops.datastores.plugins.module_utils import (
    _health,
    _mongodb,
    _mongodb_health,
    _mongodb_health_checks,
)
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


def main() -> None:
    argument_spec = _mongodb.mongodb_argument_spec()
    argument_spec.update(
        databases={"type": "list", "elements": "str"},
        max_collections={"type": "int", "default": 20},
        thresholds=_health.threshold_argument_spec(_mongodb_health_checks.MONGODB_THRESHOLDS),
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        thresholds = _health.merge_thresholds(_mongodb_health_checks.MONGODB_THRESHOLDS, params["thresholds"])
        client = _mongodb.connect(params)
    except DbopsError as exc:
        fail_from_error(module, exc)
    try:
        facts = _mongodb_health.gather(client, params["databases"], thresholds)
    except _mongodb.pymongo.errors.PyMongoError as exc:
        fail_from_error(module, DbopsError(f"read health facts from MongoDB: {_mongodb.error_text(exc)}"))
    finally:
        client.close()
    report = _mongodb_health_checks.evaluate_mongodb(facts, thresholds)
    module.exit_json(changed=False, thresholds=thresholds, **report,
                     **_mongodb_health.summarize(facts, params["max_collections"]))


if __name__ == "__main__":
    main()
