# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text exposition format for the scheduled jobs (node_exporter's textfile collector).

Pure formatting (:func:`render`) and one atomic writer (:func:`write_textfile`: a temporary file in
the same directory, fsync, rename), so node_exporter never reads half a file. docs/monitoring.md
lists every metric the jobs write.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from dataclasses import dataclass, field

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FLOAT_RE = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^[-+]?Inf$|^NaN$")


@dataclass
class Metric:
    """One metric family: name, HELP text, type and its samples (labels, value)."""

    name: str
    help: str
    type: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | bool | None, **labels: str) -> None:
        """Add a sample; ``None`` (not reported) adds nothing: absent, never 0."""
        if value is None:
            return
        self.samples.append((labels, float(value)))


def escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(metrics: list[Metric]) -> str:
    """The text exposition of ``metrics`` (families without samples keep their HELP/TYPE)."""
    lines = []
    for metric in metrics:
        if not NAME_RE.match(metric.name):
            raise DbopsError(f"write metrics: {metric.name!r} is not a metric name")
        lines.append(f"# HELP {metric.name} {escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        for labels, value in metric.samples:
            for key in labels:
                if not LABEL_RE.match(key):
                    raise DbopsError(f"write metrics: {key!r} is not a label name")
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{metric.name}{{{text}}} {format_value(value)}" if text else
                         f"{metric.name} {format_value(value)}")
    return "\n".join(lines) + "\n"


def write_textfile(directory: str, filename: str, text: str, mode: int = 0o644) -> str:
    """Write ``directory/filename`` atomically (temp file + rename in the same directory)."""
    if os.sep in filename or not filename.endswith(".prom"):
        raise DbopsError(f"write metrics {filename}: the file name must end in .prom, without a directory")
    path = os.path.join(directory, filename)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DbopsError(f"write metrics {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise DbopsError(f"write metrics {path}: {exc.strerror or exc}") from exc
    return path


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def read_samples(path: str, names: set[str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of ``names`` from a text file this code wrote earlier (anything else is ignored).

    Used to carry ``*_last_success_timestamp_seconds`` / ``*_last_failure_timestamp_seconds``
    from one run to the next. A missing or unreadable file gives nothing; a line that does not
    parse as ``name{label="value",...} number`` is skipped.
    """
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(4 * 1024 * 1024)
    except (OSError, UnicodeDecodeError):
        return found
    sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
    for line in text.splitlines():
        match = sample_re.match(line)
        if not match or match.group(1) not in names or not _FLOAT_RE.match(match.group(3)):
            continue
        labels = []
        body = match.group(2) or ""
        pos = 0
        while pos < len(body):
            lm = label_re.match(body, pos)
            if not lm:
                labels = None
                break
            value = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), lm.group(2))
            labels.append((lm.group(1), value))
            pos = lm.end()
        if labels is None:
            continue
        found[(match.group(1), tuple(sorted(labels)))] = float(match.group(3))
    return found
