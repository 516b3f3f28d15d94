# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File extensions of each engine's migration files, in one place.

The engine modules read directories with them and their action plugins read ``src`` on the
controller with them. This file imports nothing: an action plugin is loaded again for every task,
and importing the engine code (and its database driver) there cost 0.09-0.15 s per task.
"""

from __future__ import annotations

PG_EXTENSIONS = ("sql",)
MONGODB_EXTENSIONS = ("yml", "yaml", "json")
