"""Helpers the migration tests share: migration files on disk, what a migrated database holds."""

from __future__ import annotations

from pathlib import Path


def write_files(directory: Path, files: dict[str, str]) -> Path:
    """``files`` (name -> text) written into ``directory`` (made if missing); the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content)
    return directory


def public_tables(pg_server, db: str) -> set[str]:
    """The names of the tables in schema ``public`` of ``db``."""
    return {r[0] for r in pg_server.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", dbname=db)}


def applied_scripts(pg_server, db: str) -> list[tuple[str, bool]]:
    """``(script, success)`` of every row of pg_migrate's history table, in order."""
    return pg_server.query("SELECT script, success FROM dbops_schema_history ORDER BY installed_rank",
                           dbname=db)
