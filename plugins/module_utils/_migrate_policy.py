# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rules of the migration policy: maintenance windows and the pre-migration backup estimate.

Maintenance windows (one string each, several per environment allowed)::

    <days> <HH:MM>-<HH:MM> <IANA time zone>
    Sat 02:00-05:00 Europe/Berlin
    Mon-Fri 22:30-01:00 UTC          (ends after midnight: the day is the day it opens)
    Sat,Sun 00:00-24:00 America/New_York
    daily 03:00-04:00 Asia/Tokyo     (also "*")

``parse_window(text)`` returns a :class:`Window` or raises ``DbopsError`` saying what is wrong;
``window_state(windows, now)`` says whether one is open at ``now`` (an aware datetime), when it
closes, and when the next one opens. Times are wall-clock times in the window's zone, so a window
stays at 02:00 local across daylight-saving changes.

The pre-migration backup estimate: ``estimate_backup_bytes(database_bytes, last_backup_bytes, ...)``
is the database size times the ratio of the last backup of that database to the database size
(or a default factor when there is no backup yet), times a safety margin; ``space_problem`` says
why a backup root cannot take it, or ``None``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._health import human_bytes

try:  # Python >= 3.9 (every controller this collection supports)
    import zoneinfo

    ZONEINFO_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - Python 3.8 managed hosts
    zoneinfo = None  # type: ignore[assignment]
    ZONEINFO_ERROR = str(exc)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW_RE = re.compile(
    r"^\s*(?P<days>\S+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+(?P<tz>\S+)\s*$")
EXAMPLE = "Sat 02:00-05:00 Europe/Berlin"


@dataclass(frozen=True)
class Window:
    """A weekly maintenance window."""

    text: str
    days: frozenset[int]  # 0 = Monday
    start_minute: int
    end_minute: int  # <= start_minute: ends the next day
    zone: Any

    @property
    def duration(self) -> dt.timedelta:
        minutes = self.end_minute - self.start_minute
        return dt.timedelta(minutes=minutes if minutes > 0 else minutes + 24 * 60)

    def openings(self, around: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """(opens, closes) of this window from the day before ``around`` to eight days after it."""
        local = around.astimezone(self.zone).date()
        result = []
        for offset in range(-1, 9):
            day = local + dt.timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = dt.datetime.combine(day, dt.time(0), tzinfo=self.zone)
            opens += dt.timedelta(minutes=self.start_minute)
            # Wall-clock arithmetic in the zone, then normalised (DST days are 23 or 25 hours long).
            opens = opens.astimezone(dt.timezone.utc)
            result.append((opens, opens + self.duration))
        return result


def _minute(text: str, what: str, source: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise DbopsError(f"parse maintenance window {source!r}: {what} {text} is not a time of day"
                         " (00:00-24:00)")
    return hours * 60 + minutes


def _days(text: str, source: str) -> frozenset[int]:
    if text.lower() in ("daily", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.lower().split(","):
        first, dash, last = part.partition("-")
        names = [first, last] if dash else [first]
        unknown = [n for n in names if n[:3] not in DAYS or len(n) < 3]
        if unknown or not part:
            raise DbopsError(f"parse maintenance window {source!r}: {part!r} is not a day or range of days"
                             f" (Mon..Sun, Mon-Fri, Sat,Sun, daily)")
        start, end = DAYS.index(names[0][:3]), DAYS.index(names[-1][:3])
        day = start
        while True:
            days.add(day)
            if day == end:
                break
            day = (day + 1) % 7
    return frozenset(days)


def parse_window(text: Any) -> Window:
    """Parse ``<days> <HH:MM>-<HH:MM> <zone>``; ``DbopsError`` naming the problem."""
    source = str(text)
    match = _WINDOW_RE.match(source) if isinstance(text, str) else None
    if match is None:
        raise DbopsError(f"parse maintenance window {source!r}: expected <days> <HH:MM>-<HH:MM> <time zone>,"
                         f" for example {EXAMPLE!r}")
    if zoneinfo is None:
        raise DbopsError(f"parse maintenance window {source!r}: Python's zoneinfo is required"
                         f" ({ZONEINFO_ERROR})")
    start = _minute(match.group("start"), "start", source)
    end = _minute(match.group("end"), "end", source)
    if start in (end, 24 * 60):
        raise DbopsError(f"parse maintenance window {source!r}: it opens and closes at the same time")
    try:
        zone = zoneinfo.ZoneInfo(match.group("tz"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DbopsError(f"parse maintenance window {source!r}: unknown time zone {match.group('tz')!r}"
                         " (an IANA name such as Europe/Berlin or UTC)") from None
    return Window(source.strip(), _days(match.group("days"), source), start, end, zone)


def parse_windows(texts: Any) -> list[Window]:
    """A list of windows (a single string is one window); every problem reported at once."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise DbopsError(f"parse maintenance windows: expected a list of windows like {EXAMPLE!r},"
                         f" got {texts!r}")
    windows, problems = [], []
    for text in texts:
        try:
            windows.append(parse_window(text))
        except DbopsError as exc:
            problems.append(exc.msg)
    if problems:
        raise DbopsError("; ".join(problems), problems=problems)
    return windows


def _iso(value: dt.datetime | None, zone: Any = None) -> str | None:
    if value is None:
        return None
    return value.astimezone(zone or dt.timezone.utc).isoformat(timespec="minutes")


def window_state(windows: Sequence[Window], now: dt.datetime) -> dict[str, Any]:
    """Whether a window is open at ``now`` (aware), when it closes and when the next one opens.

    No windows at all means no restriction (always open).
    """
    if now.tzinfo is None:
        raise DbopsError("evaluate maintenance windows: the current time has no time zone")
    if not windows:
        return {"open": True, "restricted": False, "closes_at": None, "next_open": None, "window": None,
                "next_window": None}
    open_now: tuple[dt.datetime, Window] | None = None
    upcoming: tuple[dt.datetime, Window] | None = None
    for window in windows:
        for opens, closes in window.openings(now):
            if opens <= now < closes and (open_now is None or closes > open_now[0]):
                open_now = (closes, window)
            if opens > now and (upcoming is None or opens < upcoming[0]):
                upcoming = (opens, window)
    return {
        "open": open_now is not None,
        "restricted": True,
        "window": open_now[1].text if open_now else None,
        "closes_at": _iso(open_now[0], open_now[1].zone) if open_now else None,
        "next_window": upcoming[1].text if upcoming else None,
        "next_open": _iso(upcoming[0], upcoming[1].zone) if upcoming else None,
    }


def refusal(state: dict[str, Any], environment: str, override_var: str) -> str | None:
    """The message refusing a migration outside the windows, or ``None`` inside one."""
    if state["open"]:
        return None
    return (f"migrate in environment {environment}: outside the maintenance window; the next one"
            f" ({state['next_window']}) opens at {state['next_open']}; set {override_var}=true to"
            " migrate now anyway")


# ---------------------------------------------------------------- backup space


def estimate_backup_bytes(database_bytes: int, last_backup_bytes: int | None, *,
                          default_factor: float = 1.0, margin: float = 1.2) -> dict[str, Any]:
    """Estimated size of a new backup of a database of ``database_bytes``.

    The factor is the last backup's size relative to the database size now (close to the ratio at
    the time of that backup unless the database grew a lot since), else ``default_factor``.
    """
    if database_bytes < 0 or (last_backup_bytes is not None and last_backup_bytes < 0):
        raise DbopsError("estimate backup size: sizes cannot be negative")
    if default_factor <= 0 or margin < 1:
        raise DbopsError(f"estimate backup size: factor {default_factor:g} must be > 0 and margin"
                         f" {margin:g} at least 1")
    if last_backup_bytes and database_bytes:
        factor, source = last_backup_bytes / database_bytes, "last backup"
    else:
        factor, source = default_factor, "default"
    return {"database_bytes": database_bytes, "factor": round(factor, 4), "factor_source": source,
            "margin": margin, "estimated_bytes": int(database_bytes * factor * margin)}


def space_problem(root: str, free_bytes: int, estimated_bytes: int, label: str) -> str | None:
    """Why the backup root cannot take the backup of ``label``, or ``None``."""
    if free_bytes >= estimated_bytes:
        return None
    return (f"check free space for the backup of {label}: {root} has {human_bytes(free_bytes)} free, the"
            f" pre-migration backup needs about {human_bytes(estimated_bytes)} (refusing before dumping)")


def free_bytes(path: str) -> int:
    """Bytes available to unprivileged writers on the file system of ``path``."""
    try:
        st = os.statvfs(path)
    except OSError as exc:
        raise DbopsError(f"check free space of {path}: {exc.strerror or exc}") from exc
    return int(st.f_bavail * st.f_frsize)


def check_backup_space(root: str, databases: Sequence[dict[str, Any]], *, default_factor: float = 1.0,
                       margin: float = 1.2, last_backups: dict[str, int] | None = None,
                       free: int | None = None) -> dict[str, Any]:
    """Estimate each database's pre-migration backup and compare the sum with the root's free space.

    ``databases``: ``{engine, database, size_bytes}``; ``last_backups``: ``engine:database`` -> bytes
    of the newest backup. ``DbopsError`` (nothing dumped yet) when the root cannot take them all.
    """
    last_backups = last_backups or {}
    estimates = []
    for entry in databases:
        label = f"{entry['engine']}:{entry['database']}"
        est = estimate_backup_bytes(int(entry.get("size_bytes") or 0), last_backups.get(label),
                                    default_factor=default_factor, margin=margin)
        estimates.append({"label": label, **est})
    needed = sum(e["estimated_bytes"] for e in estimates)
    available = free_bytes(root) if free is None else free
    result = {"root": root, "free_bytes": available, "needed_bytes": needed, "estimates": estimates}
    problem = space_problem(root, available, needed, ", ".join(e["label"] for e in estimates) or "nothing")
    if problem:
        raise DbopsError(problem, **result)
    return result
