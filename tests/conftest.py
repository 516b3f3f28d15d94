"""Shared pytest set-up: make the checkout importable as ansible_collections.dbops.datastores."""

import importlib
import sys

from tests.harness.runner import COLLECTIONS_PATH, ensure_collection_link

ensure_collection_link()
# pytest put .build/collections on sys.path before the link existed in a fresh checkout; forget
# the cached "nothing here" so the first run imports the collection too.
sys.path_importer_cache.pop(str(COLLECTIONS_PATH), None)
importlib.invalidate_caches()


def pytest_addoption(parser):
    parser.addoption("--pg-versions", default=None,
                     help="PostgreSQL majors the integration tests run on, e.g. 13,17,18 or all "
                          "(same as DBOPS_TEST_PG_VERSIONS; default 15)")
