"""The test kit's own promises, where a broken one would make other tests flaky."""

from __future__ import annotations

from hopkit.testing import free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    # Drawn one at a time, 300 ports out of ~28k ephemeral ones repeat more often than not.
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
