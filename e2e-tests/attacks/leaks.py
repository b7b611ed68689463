"""Everything secret the suite handled, everything the stack answered, and the scan for leaks.

The harness' HTTP clients report every request and response here (httpx event
hooks). Secrets are collected as they pass: the credentials of every
``Authorization`` header, every ``DPoP`` proof, every access and refresh token
the token endpoint issued, and every authorization code a login redirect
carried. After the whole suite has run, :func:`scan` looks for any of them,
and for anything JWT-shaped, in the stack's log files and in every response
body and ``Location`` header the suite received. A finding names the place
and a fingerprint of the secret, never the secret. The attacks that paste a
token where a service echoes what it was sent find their own request's log
lines with :func:`logged` (by the request id they sent) and scan with
:func:`scan_logs` and :func:`scan_text`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

#: A JWS in compact form whose header and payload are JSON objects (RFC 7515 §7.1).
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

#: Secrets shorter than this are not searched for: too likely to match by chance.
MIN_SECRET_LENGTH = 12

TOKEN_PATH = "/token"  # noqa: S105 - a path, not a password
FORM = "application/x-www-form-urlencoded"
#: Form fields of OAuth requests (and the login form) that hold a credential.
SECRET_FIELDS = (
    "password",
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "subject_token",
    "actor_token",
    "token",
)
AUTHORIZE_PATH = "/authorize"


@dataclass(frozen=True)
class Seen:
    """One response the suite received, kept for the scan."""

    method: str
    url: str
    status: int
    location: str | None
    body: str
    carries_tokens: bool  # a token endpoint's answer: tokens are its purpose


@dataclass
class Traffic:
    """Secrets handled and responses received, for one target."""

    secrets: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)  # authorization codes: legitimately in redirects
    seen: list[Seen] = field(default_factory=list)

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LENGTH:
            self.secrets.add(value)

    def on_request(self, request: httpx.Request) -> None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        self.add_secret(credentials.strip())
        if scheme.lower() == "basic":
            self.add_secret(_basic_secret(credentials.strip()))
        for proof in request.headers.get_list("dpop"):
            self.add_secret(proof)
        if request.headers.get("content-type", "").startswith(FORM):
            form = parse_qs(request.content.decode(errors="replace"))
            for name in SECRET_FIELDS:
                for value in form.get(name, []):
                    self.add_secret(value)

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        path = request.url.path
        location = response.headers.get("location")
        carries_tokens = path.endswith(TOKEN_PATH) and response.is_success
        if carries_tokens:
            try:
                body = json.loads(response.content)
            except ValueError:
                body = {}
            if isinstance(body, dict):
                for name in ("access_token", "refresh_token", "id_token"):
                    value = body.get(name)
                    self.add_secret(value if isinstance(value, str) else None)
        if location and path.endswith(AUTHORIZE_PATH):
            for code in parse_qs(urlsplit(location).query).get("code", []):
                self.codes.add(code)
        self.seen.append(
            Seen(
                method=request.method,
                url=str(request.url.copy_with(query=None)),
                status=response.status_code,
                location=location,
                body=response.text,
                carries_tokens=carries_tokens,
            )
        )


def _basic_secret(credentials: str) -> str | None:
    """The password half of HTTP Basic credentials (RFC 7617): a client secret here."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Finding:
    where: str  # "logs/order.log:123" or "response GET http://.../api/orders (401) body"
    what: str  # "a secret the suite handled (sha256:...)" or "a JWT-shaped string"


def scan_text(text: str, where: str, secrets: set[str], *, shapes: bool = True) -> list[Finding]:
    """Each of ``secrets`` in ``text``, and (``shapes``) anything JWT-shaped."""
    findings: list[Finding] = []
    for secret in secrets:
        index = text.find(secret)
        if index >= 0:
            line = text.count("\n", 0, index) + 1
            findings.append(Finding(f"{where}:{line}", f"a secret ({fingerprint(secret)})"))
    for match in JWT_SHAPE.finditer(text) if shapes else ():
        line = text.count("\n", 0, match.start()) + 1
        findings.append(Finding(f"{where}:{line}", f"a JWT ({fingerprint(match.group())})"))
    return findings


def scan_logs(
    logs: list[Path], secrets: set[str], *, shapes: bool = True
) -> tuple[list[Finding], int]:
    """Findings in the log files, and how many lines they have."""
    findings: list[Finding] = []
    lines = 0
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        lines += text.count("\n")
        findings.extend(scan_text(text, f"logs/{path.name}", secrets, shapes=shapes))
    return findings, lines


@dataclass(frozen=True)
class Logged:
    """One JSON log line of one request."""

    where: str  # "logs/gateway.log:12"
    text: str
    entry: dict[str, Any]


def logged(logs: list[Path], request_id: str) -> list[Logged]:
    """The JSON log lines, of every file, of the request with ``request_id``."""
    found: list[Logged] = []
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if request_id not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("request_id") == request_id:
                found.append(Logged(f"logs/{path.name}:{number}", line, entry))
    return found


def shapes_in(lines: list[Logged]) -> list[Finding]:
    """Anything JWT-shaped in the given log lines (a part of a token is a leak too)."""
    return [
        Finding(line.where, f"a JWT ({fingerprint(match.group())})")
        for line in lines
        for match in JWT_SHAPE.finditer(line.text)
    ]


def scan(traffic: Traffic, logs: list[Path]) -> tuple[list[Finding], int, int]:
    """Findings, and how many log lines and responses were scanned."""
    everything = traffic.secrets | traffic.codes
    findings, lines = scan_logs(logs, everything)
    for seen in traffic.seen:
        where = f"response {seen.method} {seen.url} ({seen.status})"
        if not seen.carries_tokens:
            findings.extend(scan_text(seen.body, f"{where} body", everything))
        if seen.location:
            # A login redirect carries its authorization code: that is the code's way home.
            # Nothing else may ride in a Location (no token in a redirect, RFC 9700 §2.1.2).
            allowed = traffic.codes if seen.url.endswith(AUTHORIZE_PATH) else set()
            findings.extend(scan_text(seen.location, f"{where} Location", everything - allowed))
    return findings, lines, len(traffic.seen)
