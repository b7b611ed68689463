"""hopkit.receiving: the validator every service builds, and its Redis client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from hopauth import StaticKeySource
from hopkit import receiving
from hopkit.forwarding import AUDIENCES
from hopkit.settings import CommonSettings, Propagation
from hopkit.testing import ValkeyServer


@pytest.fixture(scope="module")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(Path(tmp_path_factory.mktemp("valkey")))
    yield server
    server.stop()


def keys() -> StaticKeySource:
    return StaticKeySource({"keys": []})


async def test_no_url_no_client() -> None:
    async with AsyncExitStack() as resources:
        assert receiving.connect_redis(None, resources) is None
        assert receiving.connect_redis("", resources) is None


async def test_the_client_answers_and_is_closed_with_the_stack(valkey: ValkeyServer) -> None:
    async with AsyncExitStack() as resources:
        store = receiving.connect_redis(valkey.url, resources)
        assert store is not None
        assert await store.ping()


def test_exchange_mode_takes_its_own_audience_only() -> None:
    settings = CommonSettings(propagation=Propagation.EXCHANGE)
    validator = receiving.access_token_validator(settings, "order", keys(), None)
    assert validator.audience == "order"
    assert validator.audiences == {"order"}


def test_forward_mode_takes_every_audience() -> None:
    settings = CommonSettings(propagation=Propagation.FORWARD)
    validator = receiving.access_token_validator(settings, "order", keys(), None)
    assert set(validator.audiences) == {"order", *AUDIENCES}
