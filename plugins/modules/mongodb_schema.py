#!/usr/bin/python
# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongodb_schema
short_description: Declare a MongoDB database's collections, indexes, validators and views
version_added: 0.1.0
description:
  - Reconciles one database with a declaration of its collections (creation options, C($jsonSchema)
    validator), their indexes and its views. Only what is declared is touched.
  - Reads the server with one C(listCollections) and one C(listIndexes) per declared collection,
    compares the full specification of every index (keys in order, unique, sparse, partial filter,
    TTL, hidden, collation) and plans the commands that close the gap. Nothing runs until the whole
    declaration has been validated and planned, so bad input or a refused change changes nothing.
  - A changed TTL (C(expire_after_seconds)) or C(hidden) flag is applied in place with C(collMod).
    Any other change to an existing index needs O(allow_rebuild=true) (drop and create, reported in
    RV(rebuilt)); without it the task fails and shows the difference.
  - Validator, validation level and validation action are changed with C(collMod). Options fixed at
    creation (capped, time-series fields, clustered, collation) are only set when the collection is
    created; a difference fails the task rather than dropping data.
  - Views are dropped and created again when their source, pipeline or collation differ.
  - In check mode RV(commands) is the exact list of commands that would run.
options:
  database:
    description:
      - Database to reconcile.
    type: str
    required: true
    aliases: [db]
  collections:
    description:
      - Collections to create, alter or drop.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Collection name.
        type: str
        required: true
      state:
        description:
          - C(present) creates or reconciles the collection, C(absent) drops it with its data.
        type: str
        choices: [present, absent]
        default: present
      capped:
        description: Create a capped collection (needs O(collections[].size)).
        type: bool
      size:
        description: Maximum size in bytes of a capped collection (changed in place with C(collMod)).
        type: int
      max:
        description: Maximum number of documents of a capped collection.
        type: int
      timeseries:
        description: Create a time-series collection.
        type: dict
        suboptions:
          time_field:
            description: Field holding the measurement time.
            type: str
            required: true
          meta_field:
            description: Field holding the series metadata.
            type: str
          granularity:
            description: Bucket granularity (mongod changes it in place only to a coarser one).
            type: str
            choices: [seconds, minutes, hours]
          bucket_max_span_seconds:
            description: Maximum time span of a bucket.
            type: int
          bucket_rounding_seconds:
            description: Rounding of bucket start times.
            type: int
      clustered:
        description: Create a clustered collection (clustered on C(_id)).
        type: bool
      expire_after_seconds:
        description:
          - Automatic deletion for a time-series or clustered collection, changed in place with C(collMod).
          - For a TTL on a field of a normal collection, declare it on an index instead.
        type: int
      collation:
        description:
          - Default collation of the collection, for example C(locale=en) with C(strength=2). Set at
            creation.
          - Compared key by key with the server's collation, which adds default values.
        type: dict
      validator:
        description:
          - Validator document, usually a C($jsonSchema) document. Changed in place with C(collMod);
            an empty mapping removes it; when omitted the live validator is left alone.
        type: dict
      validation_level:
        description: Which writes are validated. Left alone when omitted.
        type: str
        choices: ['off', strict, moderate]
      validation_action:
        description: What happens to an invalid write. Left alone when omitted.
        type: str
        choices: [error, warn, errorAndLog]
      indexes:
        description: Indexes of the collection.
        type: list
        elements: dict
        default: []
        suboptions:
          keys:
            description:
              - Index keys in order, as a list of C([field, direction]) pairs or a mapping (kept in
                the order written).
              - A direction is C(1), C(-1), C(text), C(hashed), C(2d) or C(2dsphere).
            type: raw
            required: true
          name:
            description: Index name. Default as mongod derives it, for example C(tenantId_1_timestamp_-1).
            type: str
          state:
            description: C(absent) drops the index when it exists.
            type: str
            choices: [present, absent]
            default: present
          unique:
            description: Refuse duplicate keys.
            type: bool
            default: false
          sparse:
            description: Skip documents without the indexed fields.
            type: bool
            default: false
          hidden:
            description: Hide the index from the query planner (changed in place).
            type: bool
            default: false
          partial_filter:
            description: Index only documents matching this filter (C(partialFilterExpression)).
            type: dict
          expire_after_seconds:
            description:
              - TTL in seconds; documents expire that long after the date in the field. Single-field
                indexes only. Added or changed in place with C(collMod); removing it needs a rebuild.
            type: int
          collation:
            description: Collation of the index; the collection's default collation when omitted.
            type: dict
  views:
    description:
      - Views to create, recreate when changed, or drop. A view may be defined on a collection or
        view declared in the same task or already on the server.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: View name.
        type: str
        required: true
      state:
        description: C(present) or C(absent).
        type: str
        choices: [present, absent]
        default: present
      view_on:
        description: Source collection or view. Required when O(views[].state=present).
        type: str
      pipeline:
        description: Aggregation pipeline, a list of stages.
        type: list
        elements: dict
        default: []
      collation:
        description: Default collation of the view.
        type: dict
  allow_rebuild:
    description:
      - Drop and create again an index whose keys, unique, sparse, partial filter or collation
        changed, or whose TTL was removed. While it is rebuilt the index cannot serve queries and
        a unique index does not enforce uniqueness.
    type: bool
    default: false
  purge_indexes:
    description:
      - Drop the indexes of declared collections that are not declared. The C(_id) index is never dropped.
    type: bool
    default: false
extends_documentation_fragment:
  - dbops.datastores.mongodb
  - dbops.datastores.attributes
notes:
  - Key order matters for compound indexes; YAML mappings keep the order written, and the list form
    C([[tenantId, 1], [timestamp, -1]]) makes it explicit.
  - A validator or collation is compared with what the server stores; the server adds default
    values to collations, so only the declared keys are compared.
seealso:
  - module: dbops.datastores.mongodb_migrate
author:
  - dbops.datastores maintainers (@dbops-datastores)
"""

EXAMPLES = r"""
- name: Hot message store with a 7-day TTL and a compound index
  dbops.datastores.mongodb_schema:
    login_host: mongo1.example.com
    login_user: admin
    login_password: "{{ vault_mongo_admin_password }}"
    database: octopus_messenger
    collections:
      - name: messages
        validator:
          $jsonSchema:
            bsonType: object
            required: [conversationId, tenantId, timestamp]
        validation_level: moderate
        indexes:
          - keys: {timestamp: 1}
            expire_after_seconds: 604800
          - keys: [[tenantId, 1], [storageLevel, 1], [timestamp, -1]]
          - keys: {conversationId: 1, timestamp: -1}
            name: conversation_timeline
      - name: system_health_logs
        capped: true
        size: 104857600
    views:
      - name: storage_efficiency_summary
        view_on: messages
        pipeline:
          - $group: {_id: $storageLevel, messages: {$sum: 1}}

- name: Plan only, and show the commands
  dbops.datastores.mongodb_schema:
    database: octopus_messenger
    collections:
      - name: alert_events
        indexes:
          - keys: {createdAt: 1}
            expire_after_seconds: 7776000
  check_mode: true
  register: plan

- name: Make an existing index unique (drops and rebuilds it)
  dbops.datastores.mongodb_schema:
    database: octopus_messenger
    allow_rebuild: true
    collections:
      - name: messages
        indexes:
          - keys: {conversationId: 1, timestamp: -1}
            name: conversation_timeline
            unique: true

- name: Drop a retired collection and its view
  dbops.datastores.mongodb_schema:
    database: octopus_messenger
    collections:
      - name: messages_cold_archive
        state: absent
    views:
      - name: crm_performance_summary
        state: absent
"""

RETURN = r"""
commands:
  description:
    - The commands run, in order (in check mode, the commands that would run). Each is a
      C(runCommand) document.
  returned: always
  type: list
  elements: dict
  sample:
    - {collMod: messages, index: {name: timestamp_1, expireAfterSeconds: 604800}}
    - {createIndexes: messages, indexes: [{key: {tenantId: 1, timestamp: -1}, name: tenantId_1_timestamp_-1}]}
rebuilt:
  description: Indexes dropped and created again because of O(allow_rebuild), as C(collection.index).
  returned: always
  type: list
  elements: str
  sample: [messages.conversation_timeline]
database:
  description: The database reconciled.
  returned: always
  type: str
  sample: octopus_messenger
"""

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_schema as schema
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error

STATE = {"type": "str", "choices": ["present", "absent"], "default": "present"}

INDEX_OPTIONS = {
    "keys": {"type": "raw", "required": True, "no_log": False},
    "name": {"type": "str"},
    "state": STATE,
    "unique": {"type": "bool", "default": False},
    "sparse": {"type": "bool", "default": False},
    "hidden": {"type": "bool", "default": False},
    "partial_filter": {"type": "dict"},
    "expire_after_seconds": {"type": "int"},
    "collation": {"type": "dict"},
}

COLLECTION_OPTIONS = {
    "name": {"type": "str", "required": True},
    "state": STATE,
    "capped": {"type": "bool"},
    "size": {"type": "int"},
    "max": {"type": "int"},
    "timeseries": {"type": "dict", "options": {
        "time_field": {"type": "str", "required": True},
        "meta_field": {"type": "str"},
        "granularity": {"type": "str", "choices": ["seconds", "minutes", "hours"]},
        "bucket_max_span_seconds": {"type": "int"},
        "bucket_rounding_seconds": {"type": "int"},
    }},
    "clustered": {"type": "bool"},
    "expire_after_seconds": {"type": "int"},
    "collation": {"type": "dict"},
    "validator": {"type": "dict"},
    "validation_level": {"type": "str", "choices": ["off", "strict", "moderate"]},
    "validation_action": {"type": "str", "choices": ["error", "warn", "errorAndLog"]},
    "indexes": {"type": "list", "elements": "dict", "default": [], "options": INDEX_OPTIONS},
}

VIEW_OPTIONS = {
    "name": {"type": "str", "required": True},
    "state": STATE,
    "view_on": {"type": "str"},
    "pipeline": {"type": "list", "elements": "dict", "default": []},
    "collation": {"type": "dict"},
}


def main() -> None:
    argument_spec = _mongodb.mongodb_argument_spec()
    argument_spec.update(
        database={"type": "str", "required": True, "aliases": ["db"]},
        collections={"type": "list", "elements": "dict", "default": [], "options": COLLECTION_OPTIONS},
        views={"type": "list", "elements": "dict", "default": [], "options": VIEW_OPTIONS},
        allow_rebuild={"type": "bool", "default": False},
        purge_indexes={"type": "bool", "default": False},
    )
    module = DbopsModule(argument_spec=argument_spec, supports_check_mode=True)
    database = module.params["database"]
    result = {"changed": False, "commands": [], "rebuilt": [], "database": database}
    try:
        collections, views = schema.parse_schema(module.params)
        client = _mongodb.connect(module.params)
    except DbopsError as exc:
        fail_from_error(module, exc, **result)
    try:
        db = client[database]
        live = schema.read_live(db, [c.name for c in collections])
        plan = schema.plan_schema(database, collections, views, live,
                                  allow_rebuild=module.params["allow_rebuild"],
                                  purge_indexes=module.params["purge_indexes"])
        result.update(commands=plan.commands, rebuilt=plan.rebuilt, changed=plan.changed)
        if module._diff:
            result["diff"] = plan.diffs
        if not module.check_mode:
            schema.execute(db, plan.commands, (_mongodb.pymongo.errors.PyMongoError,), _mongodb.error_text)
    except _mongodb.pymongo.errors.PyMongoError as exc:
        error = DbopsError(f"read schema of {database}: {_mongodb.error_text(exc)}")
        fail_from_error(module, error, **result)
    except DbopsError as exc:
        if "commands" in exc.details:  # a command failed: report the ones that ran
            result.update(commands=exc.details["commands"], changed=bool(exc.details["commands"]))
        fail_from_error(module, exc, **result)
    finally:
        client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
