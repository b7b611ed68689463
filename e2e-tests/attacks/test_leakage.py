"""Leakage: after every other attack has run, no token is anywhere it should not be.

Runs last (conftest orders it so). It looks for every secret the suite
handled (access and refresh tokens, DPoP proofs, authorization codes, client
secrets and passwords, forged tokens too) and for anything JWT-shaped in
every log file of the stack and in every response body and ``Location``
header the suite received, the token endpoint's own answers excepted.
"""

from __future__ import annotations

from leaks import scan
from recorder import Expect, Observed, Recorder, refused
from stacks import Target

CATEGORY = "leakage"


def test_no_token_in_logs_error_bodies_or_redirects(target: Target, attack: Recorder) -> None:
    attack.expect(
        Expect.both(
            refused(
                None,
                "no token found",
                "logs carry claims (jti, sub, client_id, act), never a token (hopkit/logs.py); "
                "errors carry a reason, never the token (hopauth/errors.py)",
            )
        )
    )
    logs = target.logs()
    assert target.state_dir is None or logs, f"no log files in {target.state_dir}/logs"
    assert target.traffic.secrets, "the suite handled no secrets: nothing ran before this scan"
    findings, lines, responses = scan(target.traffic, logs)
    where = "; ".join(f"{f.where}: {f.what}" for f in findings[:10])
    attack.observe(
        Observed(
            "succeeded" if findings else "refused",
            None,
            f"{len(findings)} found" if findings else "no token found",
            f"scanned {lines} log lines in {len(logs)} files, {responses} responses, "
            f"{len(target.traffic.secrets)} secrets" + (f"; {where}" if where else ""),
        )
    )
