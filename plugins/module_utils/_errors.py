# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors raised by module_utils; modules turn them into ``fail_json``."""

from __future__ import annotations

from typing import Any


class DbopsError(Exception):
    """An operation failed for a reason the operator can act on.

    The message reads "<action> <object>: <cause>". ``details`` are extra keys for ``fail_json``
    (for example the plan that was not applied).
    """

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class MissingDriverError(DbopsError):
    """A Python driver (psycopg2, pymongo) is not importable on the managed host."""

    def __init__(self, library: str, import_error: str) -> None:
        super().__init__(f"the Python library {library} is required: {import_error}")
        self.library = library
        self.import_error = import_error


class DatabaseMissingError(DbopsError):
    """The database named does not exist on the server (nothing to back up yet)."""


class WrongNodeError(DbopsError):
    """The job belongs on another node of a replicated cluster (``from: standby`` on the primary, ...)."""
