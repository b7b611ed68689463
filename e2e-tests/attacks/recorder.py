"""One row per attack and mode: what should happen, what did, and why.

Each attack test declares its :class:`Expect` (an :class:`Outcome` per mode),
performs the attack, and hands what it saw to :meth:`Recorder.observe`, which
records the row and asserts that observed equals expected. The rows are what
``--attack-report`` writes and ``hopshop attack`` prints.

An outcome is *refused* or *succeeded* (the attack's effect happened: data
read, stock reserved, an order confirmed, a second charge ...), with the HTTP
status and error code of the decisive response: the RFC 6749 ``error`` of the
token endpoint, the ``error`` of a ``WWW-Authenticate`` challenge (RFC 6750
§3.1, RFC 9449 §7.1), or else the last segment of the RFC 9457 problem
``type``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

Result = Literal["refused", "succeeded"]

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Outcome:
    """What an attack did (observed) or must do (expected) in one mode."""

    result: Result
    status: int | None  # of the decisive response; None when there is none (a Kafka event)
    code: str | None = None  # error code, or a short note where there is no error
    why: str = ""  # expected: the defence that refuses it, or the check that is missing
    detail: str | None = None  # expected: a phrase the error description must contain

    def label(self) -> str:
        """``refused (401, invalid_token)``; ``refused: 200 but own invoices only``.

        A refused attack that got a success status says so in words: next to
        "refused", a bare 200 reads like a contradiction.
        """
        answered = self.status is not None and 200 <= self.status < 300
        if self.result == "refused" and answered and self.code:
            return f"refused: {self.status} but {self.code}"
        parts = [str(self.status)] if self.status is not None else []
        if self.code:
            parts.append(self.code)
        return f"{self.result} ({', '.join(parts)})" if parts else self.result


def refused(status: int | None, code: str | None, why: str, detail: str | None = None) -> Outcome:
    return Outcome("refused", status, code, why, detail)


def succeeded(status: int | None, why: str, code: str | None = None) -> Outcome:
    return Outcome("succeeded", status, code, why)


@dataclass(frozen=True)
class Expect:
    secure: Outcome
    vulnerable: Outcome

    @classmethod
    def both(cls, outcome: Outcome) -> Expect:
        """The same outcome in both modes (the auth server and Kafka consumers do not change)."""
        return cls(outcome, outcome)

    def of(self, mode: str) -> Outcome:
        return self.secure if mode == "secure" else self.vulnerable


@dataclass(frozen=True)
class Observed:
    result: Result
    status: int | None
    code: str | None
    description: str = ""  # error_description / problem detail, or what the test saw


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of the ``WWW-Authenticate`` challenge, plus ``scheme``."""
    header = response.headers.get("www-authenticate", "")
    scheme = header.split(" ", 1)[0]
    return {"scheme": scheme, **dict(_CHALLENGE_PARAM.findall(header))}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_code(response: httpx.Response) -> str | None:
    """The error code a client is meant to act on, or a note that the format is wrong."""
    if response.is_success or response.is_redirect:
        return None
    params = challenge(response)
    if "error" in params:
        return params["error"]
    body = _json(response)
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(PROBLEM_JSON) and isinstance(body.get("type"), str):
        return re.split(r"[:/]", body["type"])[-1]
    if isinstance(body.get("error"), str):  # RFC 6749 §5.2
        return str(body["error"])
    return f"no error code ({content_type or 'no content type'})"


def error_description(response: httpx.Response) -> str:
    params = challenge(response)
    body = _json(response)
    for value in (
        params.get("error_description"),
        body.get("detail"),
        body.get("error_description"),
    ):
        if isinstance(value, str) and value:
            return value
    return ""


def observed(
    response: httpx.Response, *, effect: bool, note: str | None = None, seen: str = ""
) -> Observed:
    """The outcome of an attack whose decisive step was ``response``.

    ``effect``: did the attack get what it was after (data read, stock held,
    a token issued ...), judged from the effect itself and not only from the
    status. ``note`` says what a successful answer held, where there is no
    error code (a filtered list); ``seen`` adds what the test saw besides the
    response.
    """
    description = "; ".join(part for part in (error_description(response), seen) if part)
    return Observed(
        "succeeded" if effect else "refused",
        response.status_code,
        note if note and response.is_success else error_code(response),
        description,
    )


@dataclass(frozen=True)
class Row:
    attack: str
    category: str
    mode: str
    expected: str
    observed: str
    why: str
    as_expected: bool
    expected_result: Result
    observed_result: str
    detail: str = ""


@dataclass
class Recorder:
    """Records the row of one attack in one mode; made per test by the ``attack`` fixture."""

    attack: str
    category: str
    mode: str
    rows: list[Row]
    expected: Outcome | None = None
    row: Row | None = field(default=None, repr=False)

    def expect(self, expect: Expect) -> Outcome:
        self.expected = expect.of(self.mode)
        return self.expected

    def observe(self, seen: Observed) -> None:
        """Record the row, then assert that it went as expected."""
        expected = self.expected
        assert expected is not None, "call expect() before observe()"
        matches = (
            seen.result == expected.result
            and seen.status == expected.status
            and seen.code == expected.code
            and (expected.detail is None or expected.detail in seen.description)
        )
        got = Outcome(seen.result, seen.status, seen.code)
        self.row = Row(
            attack=self.attack,
            category=self.category,
            mode=self.mode,
            expected=expected.label(),
            observed=got.label(),
            why=expected.why,
            as_expected=matches,
            expected_result=expected.result,
            observed_result=seen.result,
            detail=seen.description,
        )
        self.rows.append(self.row)
        wanted = f" with {expected.detail!r}" if expected.detail else ""
        assert matches, (
            f"{self.attack} ({self.mode} mode): expected {expected.label()}{wanted}, "
            f"observed {got.label()}: {seen.description or '-'}\n  expected because: {expected.why}"
        )

    def failed_before_observing(self, error: str) -> None:
        """The test broke before the attack's outcome was seen: a row that says so."""
        expected = self.expected
        self.row = Row(
            attack=self.attack,
            category=self.category,
            mode=self.mode,
            expected=expected.label() if expected else "?",
            observed=f"error: {error[:150]}",
            why=expected.why if expected else "",
            as_expected=False,
            expected_result=expected.result if expected else "refused",
            observed_result="error",
        )
        self.rows.append(self.row)


#: Every row of the session, in the order the attacks ran (the conftest makes it per session).
ROWS = pytest.StashKey[list["Row"]]()


def attack_name(item: Any, mode: str) -> str:
    """``test_token_replayed_at_order[secure-x]`` -> ``token replayed at order (x)``."""
    base = getattr(item, "originalname", item.name).removeprefix("test_").replace("_", " ")
    _, _, ids = item.name.partition("[")
    variant = ids.rstrip("]")
    for part in (f"{mode}-", f"-{mode}", mode):
        if part in variant:
            variant = variant.replace(part, "", 1)
            break
    return f"{base} ({variant})" if variant else base


def write_report(path: Path, rows: list[Row]) -> None:
    path.write_text(
        json.dumps({"version": 1, "rows": [asdict(row) for row in rows]}, indent=2) + "\n",
        encoding="utf-8",
    )
