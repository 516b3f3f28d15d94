# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shape of a statement, without its values, for health results and reports.

Query text read from ``pg_stat_activity`` and MongoDB ``currentOp`` can hold passwords, card
numbers and personal data. Health results keep only the shape, as ``pg_stat_statements``
normalises a query: literals become ``$1``, ``$2``... (SQL) or ``"?"`` (MongoDB commands),
comments are dropped, and the text is cut at :data:`SHAPE_LIMIT` characters.
"""

from __future__ import annotations

import re
from typing import Any

SHAPE_LIMIT = 300
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_PLACEHOLDER = re.compile(r"\$(\d+)")
_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$]")


def _skip_string(text: str, pos: int, backslash: bool) -> int:
    """Position after the single-quoted string starting at ``text[pos] == "'"``."""
    pos += 1
    while pos < len(text):
        char = text[pos]
        if backslash and char == "\\":
            pos += 2
            continue
        if char == "'":
            if pos + 1 < len(text) and text[pos + 1] == "'":
                pos += 2
                continue
            return pos + 1
        pos += 1
    return pos


def _comment_end(text: str, pos: int, _prev_ident: bool) -> int | None:
    pair = text[pos : pos + 2]
    if pair == "--":
        end = text.find("\n", pos)
        return len(text) if end < 0 else end
    if pair == "/*":
        end = text.find("*/", pos + 2)
        return len(text) if end < 0 else end + 2
    return None


def _literal_end(text: str, pos: int, prev_ident: bool) -> int | None:
    char, nxt = text[pos], text[pos + 1 : pos + 2]
    if char == "'":
        return _skip_string(text, pos, backslash=False)
    if char in "eEbBxXnN" and nxt == "'" and not prev_ident:
        return _skip_string(text, pos + 1, backslash=char in "eE")
    tag = _DOLLAR_TAG.match(text, pos) if char == "$" and not prev_ident else None
    if tag and not _PLACEHOLDER.match(text, pos):
        end = text.find(tag.group(0), tag.end())
        return len(text) if end < 0 else end + len(tag.group(0))
    if (char.isdigit() or (char == "." and nxt.isdigit())) and not prev_ident:
        number = _NUMBER.match(text, pos)
        return number.end() if number else pos + 1
    return None


def _kept_end(text: str, pos: int, _prev_ident: bool) -> int | None:
    if text[pos] == '"':
        end = text.find('"', pos + 1)
        while end >= 0 and end + 1 < len(text) and text[end + 1] == '"':
            end = text.find('"', end + 2)
        return len(text) if end < 0 else end + 1
    placeholder = _PLACEHOLDER.match(text, pos)
    return placeholder.end() if placeholder else None


def _token(text: str, pos: int, prev_ident: bool) -> tuple[str, int]:
    """The token at ``pos``: (``comment``/``literal``/``keep``, end position)."""
    for kind, finder in (("comment", _comment_end), ("literal", _literal_end), ("keep", _kept_end)):
        end = finder(text, pos, prev_ident)
        if end is not None:
            return kind, end
    return "keep", pos + 1


def sql_shape(text: str | None, limit: int = SHAPE_LIMIT) -> str | None:
    """``SELECT * FROM t WHERE a = $1 AND b = $2`` for ``... a = 'x' AND b = 42 -- note``."""
    if text is None:
        return None
    counter = max((int(n) for n in _PLACEHOLDER.findall(text)), default=0)
    out: list[str] = []
    pos = 0
    while pos < len(text):
        prev_ident = bool(out) and bool(_IDENT_CHAR.match(out[-1][-1:] or " "))
        kind, end = _token(text, pos, prev_ident)
        if kind == "comment":
            out.append(" ")
        elif kind == "literal":
            counter += 1
            out.append(f"${counter}")
        else:
            out.append(text[pos:end])
        pos = end
    shape = " ".join("".join(out).split())
    return shape if len(shape) <= limit else shape[: limit - 3] + "..."


def mongo_shape(value: Any, depth: int = 0) -> Any:
    """A command document with every value replaced by ``"?"`` (keys and structure stay)."""
    if depth > 20:
        return "?"
    if isinstance(value, dict):
        return {str(k): mongo_shape(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mongo_shape(v, depth + 1) for v in value]
    return "?"


def mongo_command_shape(command: dict[str, Any], limit: int = 500) -> str:
    """The shape of a ``currentOp`` command; the command name's value (a collection) stays."""
    if not isinstance(command, dict) or not command:
        return "{}"
    shaped = mongo_shape(command)
    first = next(iter(command))
    if isinstance(command[first], str):
        shaped[str(first)] = command[first]
    text = str(shaped)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shape_pg_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Replace every query text in pg_health_info facts by its shape (in place; returns ``facts``)."""
    activity = facts.get("activity") or {}
    rows = list(activity.get("long_running") or []) + list(activity.get("idle_in_transaction") or [])
    rows += list((facts.get("locks") or {}).get("blocked") or [])
    statements = facts.get("statements") or {}
    rows += list(statements.get("slow") or []) + list(statements.get("top_total_time") or [])
    for row in rows:
        if isinstance(row, dict) and "query" in row:
            row["query"] = sql_shape(row["query"])
    return facts
