# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of mongodb_migrate: with ``src``, the migration files are read on the controller."""

from __future__ import annotations

from ansible_collections.dbops.datastores.plugins.module_utils._migration_extensions import MONGODB_EXTENSIONS
from ansible_collections.dbops.datastores.plugins.plugin_utils._migration_files import MigrationAction


class ActionModule(MigrationAction):
    MODULE = "dbops.datastores.mongodb_migrate"
    EXTENSIONS = MONGODB_EXTENSIONS
