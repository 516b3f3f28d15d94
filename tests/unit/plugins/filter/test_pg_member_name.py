"""The name a replicated cluster member goes by on its primary (slot, application_name)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dbops.datastores.plugins.filter.pg_member_name import pg_member_name
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks as checks


@pytest.mark.parametrize(("inventory_name", "slot"), [
    ("pg-prod-2", "pg_prod_2"),
    ("PG-Prod.2", "pg_prod_2"),
    ("db1.example.com", "db1_example_com"),
    ("already_fine_3", "already_fine_3"),
    ("x" * 63, "x" * 63),
])
def test_inventory_names_become_slot_names(inventory_name, slot):
    assert pg_member_name(inventory_name) == slot
    assert checks.member_name(inventory_name) == slot  # what pg_clusters matches standbys by


@pytest.mark.parametrize(("value", "message"), [
    ("x" * 64, "64 bytes long; PostgreSQL allows at most 63"),
    ("", "empty inventory name"),
    (None, "expected an inventory name"),
])
def test_names_postgresql_cannot_take_fail_with_the_reason(value, message):
    with pytest.raises(AnsibleFilterError, match=message):
        pg_member_name(value)


def test_a_non_ascii_name_is_measured_in_bytes_after_replacement():
    # anything outside [a-z0-9_] becomes one "_" per character, so the byte count is the length
    assert pg_member_name("knoten-ä") == "knoten__"
