# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import html
import math
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._health import human_bytes, human_seconds

COLORS = {
    "ok": "#2e7d32",
    "warning": "#b26a00",
    "critical": "#c62828",
    "info": "#1565c0",
    "skipped": "#757575",
    "failed": "#6a1b9a",
}
STATUS_ORDER = {"failed": 0, "critical": 1, "warning": 2, "ok": 3}

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;
background:#f3f4f6}
header{background:#111827;color:#f9fafb;padding:18px 28px}
header h1{margin:0;font-size:22px}
header .meta{color:#cbd5e1;font-size:13px;margin-top:4px}
main{padding:20px 28px;max-width:1280px;margin:auto}
.overview{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden;
box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:22px}
.overview th,.overview td{padding:8px 12px;text-align:left;border-bottom:1px solid #e5e7eb}
.overview td:first-child,.overview td:nth-child(5){white-space:nowrap}
.overview th{background:#f9fafb;font-size:12px;text-transform:uppercase;color:#6b7280;letter-spacing:.04em}
.host{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.1);margin-bottom:22px;
border-left:8px solid var(--c);overflow:hidden}
.host>h2{margin:0;padding:14px 18px 4px;font-size:19px}
.host .sub{padding:0 18px 10px;color:#6b7280;font-size:13px}
.grid{display:grid;grid-template-columns:170px 200px 1fr 1fr;gap:14px;padding:0 18px 14px}
.tile{background:#f9fafb;border-radius:8px;padding:10px 12px}
.tile h3{margin:0 0 6px;font-size:12px;text-transform:uppercase;color:#6b7280;letter-spacing:.04em}
.big{font-size:26px;font-weight:700}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600;
text-transform:uppercase;background:var(--c)}
.muted{color:#6b7280}
.findings{width:calc(100% - 36px);margin:0 18px 14px;border-collapse:collapse}
.findings td,.findings th{padding:6px 8px;border-top:1px solid #e5e7eb;vertical-align:top;text-align:left}
.findings th{font-size:12px;color:#6b7280;text-transform:uppercase}
.findings .fix{color:#374151;font-size:13px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:14px;padding:0 18px 16px}
.checks span{display:inline-block;margin:2px 4px 2px 0;padding:1px 7px;border-radius:6px;font-size:12px;
border:1px solid var(--c);color:var(--c)}
.error{margin:0 18px 16px;padding:10px;background:#fdecea;border-radius:6px;color:#8a1c1c}
svg text{font-family:inherit}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def host_status(entry: dict[str, Any]) -> str:
    if entry.get("error") or not entry.get("health"):
        return "failed"
    return str(entry["health"].get("status") or "ok")


def order_hosts(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worst first: failed, critical, warning, ok; then lowest score; then name."""

    def key(entry: dict[str, Any]) -> tuple[int, float, str]:
        score = (entry.get("health") or {}).get("score")
        return (
            STATUS_ORDER.get(host_status(entry), 3),
            score if score is not None else -1.0,
            str(entry.get("host")),
        )

    return sorted(hosts, key=key)


def score_ring(score: int | None, status: str) -> str:
    """A ring filled in proportion to the score, the number in the middle."""
    radius, width = 52, 12
    circumference = 2 * math.pi * radius
    filled = circumference * (score or 0) / 100.0
    color = COLORS.get(status, COLORS["ok"])
    return (
        f'<svg width="140" height="140" viewBox="0 0 140 140" role="img" aria-label="score {_e(score)}">'
        f'<circle cx="70" cy="70" r="{radius}" fill="none" stroke="#e5e7eb" stroke-width="{width}"/>'
        f'<circle cx="70" cy="70" r="{radius}" fill="none" stroke="{color}" stroke-width="{width}" '
        f'stroke-linecap="round" stroke-dasharray="{filled:.1f} {circumference:.1f}" '
        f'transform="rotate(-90 70 70)"/>'
        f'<text x="70" y="78" text-anchor="middle" font-size="34" font-weight="700" fill="{color}" '
        f'data-metric="score">{_e(score if score is not None else "n/a")}</text>'
        f'<text x="70" y="98" text-anchor="middle" font-size="11" fill="#6b7280">of 100</text></svg>'
    )


def gauge(
    percent: float | None,
    label: str,
    metric: str,
    good_above: float | None = None,
    bad_above: float | None = None,
) -> str:
    """A half-circle gauge; green/amber/red from the thresholds (hit ratio: high is good)."""
    if percent is None:
        return f'<div class="muted" data-metric="{metric}">not reported</div>'
    value = max(0.0, min(100.0, float(percent)))
    if good_above is not None:
        color = (
            COLORS["ok"]
            if value >= good_above
            else COLORS["warning"]
            if value >= good_above - 10
            else COLORS["critical"]
        )
    elif bad_above is not None:
        color = COLORS["critical"] if value >= bad_above else COLORS["ok"]
    else:
        color = COLORS["info"]
    radius, cx, cy = 70, 90, 86
    angle = math.pi * (1 - value / 100.0)
    x, y = cx + radius * math.cos(angle), cy - radius * math.sin(angle)
    arc = f"M {cx - radius} {cy} A {radius} {radius} 0 0 1 {x:.2f} {y:.2f}" if value > 0 else ""
    return (
        f'<svg width="180" height="104" viewBox="0 0 180 104" role="img" aria-label="{_e(label)}">'
        f'<path d="M {cx - radius} {cy} A {radius} {radius} 0 0 1 {cx + radius} {cy}" fill="none" '
        f'stroke="#e5e7eb" stroke-width="16"/>'
        + (f'<path d="{arc}" fill="none" stroke="{color}" stroke-width="16"/>' if arc else "")
        + f'<text x="{cx}" y="{cy - 6}" text-anchor="middle" font-size="24" font-weight="700" fill="{color}" '
        f'data-metric="{metric}">{value:.1f}%</text>'
        f'<text x="{cx}" y="{cy + 14}" text-anchor="middle" font-size="11" fill="#6b7280">'
        f"{_e(label)}</text></svg>"
    )


def size_bars(items: list[dict[str, Any]], label_key: str = "label") -> str:
    """Horizontal SVG bars, longest = largest; the dead tuple share of a table is drawn darker."""
    items = [i for i in items if i.get("bytes") is not None][:10]
    if not items:
        return '<div class="muted">no tables</div>'
    largest = max(i["bytes"] for i in items) or 1
    row, label_w, bar_w = 22, 230, 260
    parts = [
        f'<svg width="{label_w + bar_w + 90}" height="{row * len(items) + 4}" role="img" '
        f'aria-label="largest tables">'
    ]
    for n, item in enumerate(items):
        y = n * row + 2
        width = max(2.0, bar_w * item["bytes"] / largest)
        label = str(item[label_key])
        short = label if len(label) <= 34 else "..." + label[-31:]
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12" fill="#374151">{_e(short)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="14" rx="2" fill="#60a5fa" '
            f'data-table="{_e(label)}" data-bytes="{item["bytes"]}"/>'
        )
        dead = item.get("dead_fraction") or 0
        if dead > 0:
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{width * dead:.1f}" height="14" rx="2" '
                f'fill="#b45309"><title>{dead * 100:.0f}% dead tuples</title></rect>'
            )
        parts.append(
            f'<text x="{label_w + width + 6:.1f}" y="{y + 14}" font-size="12" fill="#374151">'
            f"{_e(human_bytes(item['bytes']))}</text>"
        )
    parts.append("</svg>")
    if any(i.get("dead_fraction") for i in items):
        parts.append(
            '<div class="muted" style="font-size:12px"><svg width="10" height="10"><rect width="10" '
            'height="10" fill="#b45309"/></svg> dead tuples (share of the heap)</div>'
        )
    return "".join(parts)


def _tables(entry: dict[str, Any]) -> list[dict[str, Any]]:
    health = entry["health"]
    if entry.get("engine") == "mongodb":
        return [
            {"label": f"{c['database']}.{c['name']}", "bytes": c.get("storage_bytes", c.get("size_bytes"))}
            for c in health.get("collections") or []
        ]
    result = []
    for t in health.get("tables") or []:
        live, dead = t.get("live_tuples") or 0, t.get("dead_tuples") or 0
        result.append(
            {
                "label": f"{t['database']}.{t['schema']}.{t['name']}",
                "bytes": t.get("total_bytes"),
                "dead_fraction": (dead / (live + dead) if live + dead else 0)
                * ((t.get("table_bytes") or 0) / (t.get("total_bytes") or 1)),
            }
        )
    return result


def pgbackrest_lines(entry: dict[str, Any]) -> str:
    """The pgBackRest recovery window of each stanza (pgbackrest_info), or why it is unknown."""
    info = entry.get("pgbackrest")
    if not info:
        return ""
    if info.get("failed"):
        color = COLORS["critical"]
        return f'<div style="color:{color}" data-metric="pgbackrest">pgBackRest: {_e(info.get("msg"))}</div>'
    return "".join(
        f'<div class="muted" data-metric="pgbackrest">pgBackRest {_e(stanza.get("summary"))}</div>'
        for stanza in info.get("stanzas") or []
    )


def backup_tile(entry: dict[str, Any]) -> str:
    backup = entry.get("backup")
    if not backup:
        return '<div class="muted" data-metric="backup">not configured</div>' + pgbackrest_lines(entry)
    if backup.get("failed"):
        return (
            f'<div style="color:{COLORS["critical"]}" data-metric="backup">'
            f"unreadable: {_e(backup.get('msg'))}</div>"
        )
    age = backup.get("newest_age_s")
    if age is None:
        return f'<div style="color:{COLORS["critical"]}" data-metric="backup">no backup found</div>'
    stale = backup.get("stale")
    color = COLORS["critical"] if stale else COLORS["ok"]
    limit = f" (limit {_e(entry.get('backup_max_age'))})" if entry.get("backup_max_age") else ""
    lines = [
        f'<div class="big" style="color:{color}" data-metric="backup_age_s" data-value="{age}">'
        f'{_e(human_seconds(age))} ago</div><div class="muted">newest backup{limit}</div>'
    ]
    for group in backup.get("groups") or []:
        lines.append(
            f'<div class="muted">{_e(group.get("database"))}: {_e(group.get("count"))} '
            f"backup{'' if group.get('count') == 1 else 's'}, "
            f"{_e(human_bytes(group.get('size')))}, newest {_e(human_seconds(group.get('latest_age_s')))}"
            f"{'' if group.get('latest_verified') else ', none verified'}</div>"
        )
    for reason in backup.get("stale_reasons") or []:
        lines.append(f'<div style="color:{COLORS["critical"]}">{_e(reason)}</div>')
    lines.append(pgbackrest_lines(entry))
    return "".join(lines)


def backup_state(entry: dict[str, Any]) -> str:
    """``fresh``, ``stale``, ``unreadable`` or ``not configured`` for the overview."""
    backup = entry.get("backup")
    if not backup:
        return "not configured"
    if backup.get("failed"):
        return "unreadable"
    return "stale" if backup.get("stale") or backup.get("newest_age_s") is None else "fresh"


def migration_tile(entry: dict[str, Any]) -> str:
    migrations = (entry.get("health") or {}).get("migrations")
    if not migrations:
        return '<div class="muted" data-metric="migration">not configured</div>'
    lines = []
    for m in migrations:
        if m.get("error"):
            lines.append(
                f'<div style="color:{COLORS["warning"]}">{_e(m["database"])}: {_e(m["error"])}</div>'
            )
            continue
        failed = (
            f' <span class="pill" style="--c:{COLORS["critical"]}">{m["failed_count"]} failed</span>'
            if m.get("failed_count")
            else ""
        )
        lines.append(
            f'<div><b>{_e(m["database"])}</b> version <b data-metric="migration_version" '
            f'data-database="{_e(m["database"])}">{_e(m.get("version") or "none")}</b>'
            f' <span class="muted">{_e(m.get("description") or "")}</span>{failed}</div>'
        )
    return "".join(lines)


def _cache_gauge(entry: dict[str, Any]) -> str:
    health = entry["health"]
    thresholds = health.get("thresholds") or {}
    if entry.get("engine") == "mongodb":
        cache = health.get("cache") or {}
        return gauge(
            cache.get("used_percent"),
            "WiredTiger cache used",
            "cache_used",
            bad_above=thresholds.get("cache_used_critical_percent", 95),
        )
    cache = health.get("cache") or {}
    return gauge(
        cache.get("hit_ratio_percent"),
        "cache hit ratio",
        "cache_hit_ratio",
        good_above=thresholds.get("cache_hit_warning_percent", 90),
    )


def _connections(health: dict[str, Any]) -> str:
    conn = health.get("connections")
    if not conn or conn.get("current") is None:
        return '<div class="muted" data-metric="connections_current">not reported</div>'
    usage = conn.get("usage_percent")
    if usage is None:
        return (
            f'<div class="big"><span data-metric="connections_current">{_e(conn["current"])}</span></div>'
            '<div class="muted" data-metric="connections_max">limit not reported</div>'
        )
    width = 160 * min(100.0, usage or 0) / 100.0
    color = (
        COLORS["critical"]
        if (usage or 0) >= 95
        else COLORS["warning"]
        if (usage or 0) >= 80
        else COLORS["ok"]
    )
    return (
        f'<div class="big"><span data-metric="connections_current">{_e(conn["current"])}</span>'
        f'<span class="muted" style="font-size:14px"> / <span data-metric="connections_max">'
        f"{_e(conn.get('max', 'n/a'))}</span></span></div>"
        f'<svg width="160" height="10"><rect width="160" height="10" rx="5" fill="#e5e7eb"/>'
        f'<rect width="{width:.1f}" height="10" rx="5" fill="{color}"/></svg>'
        f'<div class="muted">{_e(_num(usage))}% in use</div>'
    )


def _findings(health: dict[str, Any]) -> str:
    findings = health.get("findings") or []
    if not findings:
        return '<p style="padding:0 18px" class="muted">No findings.</p>'
    rows = [
        '<table class="findings"><tr><th>Severity</th><th>Check / object</th><th>What</th><th>Fix</th></tr>'
    ]
    for f in findings:
        color = COLORS.get(f.get("severity"), COLORS["info"])
        rows.append(
            f'<tr data-finding="{_e(f.get("check"))}"><td><span class="pill" style="--c:{color}">'
            f"{_e(f.get('severity'))}</span></td><td><b>{_e(f.get('check'))}</b><br>"
            f'<span class="muted">{_e(f.get("object") or "")}</span></td><td>{_e(f.get("message"))}</td>'
            f'<td class="fix">{_e(f.get("fix"))}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _checks(health: dict[str, Any]) -> str:
    chips = []
    for c in health.get("checks") or []:
        color = COLORS.get(c.get("status"), COLORS["skipped"])
        tip = c.get("reason") or f"weight {c.get('weight')}"
        chips.append(
            f'<span style="--c:{color}" title="{_e(tip)}">{_e(c.get("title"))}: {_e(c.get("status"))}</span>'
        )
    return f'<div class="checks">{"".join(chips)}</div>'


def host_section(entry: dict[str, Any]) -> str:
    status = host_status(entry)
    color = COLORS.get(status, COLORS["ok"])
    name = _e(entry.get("host"))
    engine = _e(entry.get("engine"))
    if status == "failed":
        return (
            f'<section class="host" style="--c:{color}" data-host="{name}" data-status="failed">'
            f'<h2>{name} <span class="pill">unreachable</span></h2><div class="sub">{engine}</div>'
            f'<div class="error">{_e(entry.get("error") or "no health facts")}</div>'
            f'<div class="cols"><div class="tile"><h3>Backup freshness</h3>{backup_tile(entry)}</div>'
            f'<div class="tile"><h3>Migration version</h3>{migration_tile(entry)}</div></div></section>'
        )
    health = entry["health"]
    server = health.get("server") or {}
    role = ""
    if entry.get("engine") == "mongodb":
        role = "primary" if server.get("is_primary") else "secondary/standalone"
        if server.get("replica_set"):
            role += f" of {server['replica_set']}"
    else:
        role = (health.get("replication") or {}).get("role", "")
    absent = health.get("absent") or []
    absent_note = f" &middot; not reported by the server: {_e(', '.join(absent))}" if absent else ""
    skipped_db = health.get("skipped_databases") or []
    skipped_note = "".join(
        f'<div class="error">database {_e(s["database"])} not inspected: {_e(s["reason"])}</div>'
        for s in skipped_db
    )
    size = health.get("size_bytes")
    return (
        f'<section class="host" style="--c:{color}" data-host="{name}" data-status="{_e(status)}">'
        f'<h2>{name} <span class="pill">{_e(status)}</span>{_stale_pill(entry)}</h2>'
        f'<div class="sub">{engine} {_e(server.get("version"))} &middot; {_e(role)} &middot; up '
        f"{_e(human_seconds(server.get('uptime_seconds')))} &middot; facts of "
        f"{_e(server.get('collected_at') or health.get('collected_at'))}{absent_note}</div>"
        '<div class="grid"><div class="tile"><h3>Health score</h3>'
        f"{score_ring(health.get('score'), status)}</div>"
        f'<div class="tile"><h3>Cache</h3>{_cache_gauge(entry)}</div>'
        f'<div class="tile"><h3>Connections</h3>{_connections(health)}'
        f'<h3 style="margin-top:10px">Data size</h3><div class="big" data-metric="size_bytes" '
        f'data-value="{_e(size)}">{_e(human_bytes(size))}</div></div>'
        f'<div class="tile"><h3>Backup freshness</h3>{backup_tile(entry)}'
        f'<h3 style="margin-top:10px">Migration version</h3>{migration_tile(entry)}</div></div>'
        f"{skipped_note}{_findings(health)}"
        '<div class="cols"><div class="tile"><h3>Largest '
        f"{'collections' if engine == 'mongodb' else 'tables'}"
        f"</h3>{size_bars(_tables(entry))}</div>"
        f'<div class="tile"><h3>Checks</h3>{_checks(health)}</div></div>'
        f"</section>"
    )


def _backup_cell(entry: dict[str, Any]) -> str:
    state = backup_state(entry)
    color = {"fresh": COLORS["ok"], "stale": COLORS["critical"], "unreadable": COLORS["critical"]}.get(
        state, COLORS["skipped"]
    )
    return f'<td style="color:{color}" data-backup-state="{_e(state)}">{_e(state)}</td>'


def _stale_pill(entry: dict[str, Any]) -> str:
    if backup_state(entry) not in ("stale", "unreadable"):
        return ""
    return f' <span class="pill" style="--c:{COLORS["critical"]}">backups {_e(backup_state(entry))}</span>'


def overview(hosts: list[dict[str, Any]]) -> str:
    rows = [
        '<table class="overview"><tr><th>Host</th><th>Engine</th><th>Score</th><th>Status</th>'
        "<th>Backups</th><th>Findings</th><th>Most severe</th></tr>"
    ]
    for entry in hosts:
        status = host_status(entry)
        health = entry.get("health") or {}
        findings = [f for f in health.get("findings") or [] if f.get("severity") != "info"]
        top = findings[0]["message"] if findings else (entry.get("error") or "")
        rows.append(
            f'<tr data-overview="{_e(entry.get("host"))}"><td><b>{_e(entry.get("host"))}</b></td>'
            f'<td>{_e(entry.get("engine"))}</td><td><b style="color:{COLORS.get(status)}">'
            f"{_e(health.get('score', 'n/a'))}</b></td>"
            f'<td><span class="pill" style="--c:{COLORS.get(status)}">'
            f"{_e(status)}</span></td>{_backup_cell(entry)}<td>{len(findings)}</td><td>{_e(top)}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def render(
    hosts: list[dict[str, Any]], title: str = "Database health", generated_at: str | None = None
) -> str:
    """The whole HTML document."""
    ordered = order_hosts(list(hosts or []))
    counts: dict[str, int] = {}
    for entry in ordered:
        counts[host_status(entry)] = counts.get(host_status(entry), 0) + 1
    summary = ", ".join(f"{counts[s]} {s}" for s in ("failed", "critical", "warning", "ok") if counts.get(s))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f'<style>{CSS}</style></head><body><header><h1>{_e(title)}</h1><div class="meta">'
        f"{len(ordered)} hosts: {_e(summary or 'none')} &middot; generated {_e(generated_at or '')}"
        "</div></header>"
        f"<main>{overview(ordered)}{''.join(host_section(e) for e in ordered)}</main></body></html>"
    )


def health_report(
    hosts: list[dict[str, Any]], title: str = "Database health", generated_at: str | None = None
) -> str:
    return render(hosts, title, generated_at)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"health_report": health_report}
