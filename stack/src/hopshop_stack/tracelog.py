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
    details = [(label + _claims(record[key])) for key, label in _TOKENS if _is_dict(record, key)]
    if _is_consumer_note(record):
        details.append(_retry(record))
    for detail in filter(None, details):
        lines += textwrap.wrap(
            detail,
            width=max(width, 40),
            initial_indent="  ",
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return [line.replace(_KEEP, " ") for line in lines]


# A space no line is broken at (textwrap breaks at ASCII whitespace only): "retry in 0.4 s"
# stays on one line. Printed as a plain space.
_KEEP = "\N{NO-BREAK SPACE}"


#: (field, label): the token a service received, the one auth issued.
_TOKENS = (("token", ""), ("issued", "issued: "))


def _is_dict(record: dict[str, Any], key: str) -> bool:
    return isinstance(record.get(key), dict)


def _is_consumer_note(record: dict[str, Any]) -> bool:
    """A consumer line that is not an event's summary: a retry, a wait, a dead letter."""
    return (
        record.get("logger") == "hopkit.consumer"
        and "type" not in record
        and "outcome" not in record
    )


def _what(record: dict[str, Any]) -> str:
    if "method" in record and "path" in record:
        what = f"{record['method']} {record['path']} {record.get('status', '')}".rstrip()
    elif record.get("logger") == "hopkit.consumer" and not _is_consumer_note(record):
        what = f"event {record.get('type', '?')} {record.get('outcome', '')}".rstrip()
    elif record.get("logger") == "hopkit.consumer":
        # Only what needs a look is labelled: an INFO note (a partition handed over) is news.
        level = str(record.get("level", "")).upper()
        what = f"{level if level in _LOUD else ''} {record.get('msg', '')}".strip()
    else:
        what = f"{str(record.get('level', '')).upper()} {record.get('msg', '')}".strip()
    event = record.get("event")
    return f"{what} {event}" if isinstance(event, str) else what


_LOUD = frozenset({"WARNING", "ERROR", "CRITICAL"})


def _retry(record: dict[str, Any]) -> str:
    """What a consumer's retry or wait line says: why, which attempt, how long until the next."""
    shown = []
    for key in ("error", "reason", "attempt"):
        value = record.get(key)
        if value is not None and value != "":
            # A reason is a sentence and may break anywhere; the rest is a word each.
            shown.append(f"{key}{' ' if key == 'reason' else _KEEP}{value}")
    retry_in = record.get("retry_in")
    if isinstance(retry_in, int | float):
        shown.append(f"retry{_KEEP}in{_KEEP}{retry_in:g}{_KEEP}s")
    topic, partition = record.get("topic"), record.get("partition")
    if isinstance(topic, str) and isinstance(partition, int):
        shown.append(f"{topic}[{partition}]")
    return " · ".join(shown)


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
