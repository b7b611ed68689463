"""`hopshop logs --trace`: one request's log lines from every service, as a trainer reads them.

Each service writes JSON lines (hopkit.logs) carrying the W3C ``trace_id`` of
the request or event they belong to. Sorted by their ``ts`` they read as the
request travelled: edge, order, inventory, auth's exchanges, then the Kafka
workers. Each line is shortened to what it says about identity: the request,
its answer, and the token the service received (or the one auth issued).
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

#: A W3C trace id (Trace Context §3.2.2.3), as the demo prints it and the logs carry it.
TRACE_ID = re.compile(r"[0-9a-f]{32}")


def trace_lines(files: dict[str, Path], trace: str) -> list[tuple[str, str]]:
    """(component, line) for every line naming ``trace``, in the order they were logged.

    Lines without a timestamp keep their place after the timestamped ones of
    the same file.
    """
    found: list[tuple[float, int, str, str]] = []
    for name, path in files.items():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        last = 0.0
        for line in text.splitlines():
            if trace not in line:
                continue
            record = _record(line)
            stamp = record.get("ts") if record else None
            if isinstance(stamp, int | float):
                last = float(stamp)
            found.append((last, len(found), name, line))
    found.sort()
    return [(name, line) for _, _, name, line in found]


def summary(line: str, width: int = 100) -> list[str]:
    """``time  what happened``, then the token's claims indented and wrapped to ``width``.

    A line that is not one of ours comes back as it is.
    """
    record = _record(line)
    if record is None:
        return [line]
    lines = [f"{_when(record.get('ts'))} {_what(record)}".strip()]
    for key, label in (("token", ""), ("issued", "issued: ")):
        claims = record.get(key)
        if isinstance(claims, dict):
            lines += textwrap.wrap(
                label + _claims(claims),
                width=max(width, 40),
                initial_indent="  ",
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
    return lines


def _what(record: dict[str, Any]) -> str:
    if "method" in record and "path" in record:
        what = f"{record['method']} {record['path']} {record.get('status', '')}".rstrip()
    elif record.get("logger") == "hopkit.consumer":
        what = f"event {record.get('type', '?')} {record.get('outcome', '')}".rstrip()
    else:
        what = f"{record.get('level', '')} {record.get('msg', '')}".strip()
    event = record.get("event")
    return f"{what} {event}" if isinstance(event, str) else what


def _claims(token: dict[str, Any]) -> str:
    shown = []
    for key, label, joiner in _CLAIMS:
        value = token.get(key)
        if key == "client_id" and value == token.get("sub"):
            continue  # client credentials: the client is the subject, said once
        if isinstance(value, list):
            value = joiner.join(str(item) for item in value)
        if value:
            shown.append(f"{label} {_short(str(value))}")
    return " · ".join(shown)


#: (claim, label, how a list of them is joined): act is a chain, newest actor first.
_CLAIMS = [
    ("sub", "sub", " "),
    ("aud", "aud", " "),
    ("client_id", "client", " "),
    ("act", "act", " ← "),
    ("scope", "scope", " "),
]


def _short(text: str) -> str:
    # A user id is a uuid: its first block is enough to tell alice from bob on a screen.
    return text[:8] if len(text) == 36 and text.count("-") == 4 else text


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return ""
    return datetime.fromtimestamp(stamp).strftime("%H:%M:%S.%f")[:-3]


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
