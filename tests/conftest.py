"""Shared pytest set-up: make the checkout importable as ansible_collections.dbops.datastores."""

from tests.harness.runner import ensure_collection_link

ensure_collection_link()
