"""The DPoP switch (HOPSHOP_DPOP) and its wiring: keys per client, proofs checked in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis
from fastapi import FastAPI
from hopauth import DPoPKey, InvalidDPoPProofError
from hopkit import dpop
from hopkit.settings import CommonSettings, Propagation
from hopkit.testing import ValkeyServer

ORDER = "http://127.0.0.1:8002"
INVENTORY = "http://127.0.0.1:8003"


@pytest.fixture(scope="module")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


@pytest.fixture
async def store(valkey: ValkeyServer) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(valkey.url, socket_timeout=1)
    yield client
    await client.aclose()


def test_dpop_is_on_by_default_in_exchange_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOPSHOP_DPOP", raising=False)
    monkeypatch.delenv("HOPSHOP_PROPAGATION", raising=False)
    settings = CommonSettings()
    assert settings.dpop is True
    assert settings.dpop_enabled is True


@pytest.mark.parametrize(
    ("dpop_env", "propagation", "enabled"),
    [
        ("false", "exchange", False),
        ("0", "exchange", False),
        ("true", "exchange", True),
        # Forward mode passes users' bearer tokens along: nothing there can be bound.
        ("true", "forward", False),
    ],
)
def test_hopshop_dpop_switches_it_only_in_exchange_mode(
    monkeypatch: pytest.MonkeyPatch, dpop_env: str, propagation: str, enabled: bool
) -> None:
    monkeypatch.setenv("HOPSHOP_DPOP", dpop_env)
    monkeypatch.setenv("HOPSHOP_PROPAGATION", propagation)
    settings = CommonSettings()
    assert settings.propagation is Propagation(propagation)
    assert settings.dpop_enabled is enabled


def test_a_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPSHOP_DPOP", "sometimes")
    with pytest.raises(ValueError, match="HOPSHOP_DPOP"):
        CommonSettings()


def test_one_key_per_client_identity() -> None:
    keys = dpop.ClientKeys(enabled=True)
    order, scheduler = keys.for_client("order"), keys.for_client("order-scheduler")
    assert isinstance(order, DPoPKey) and isinstance(scheduler, DPoPKey)
    assert order.thumbprint != scheduler.thumbprint
    assert keys.for_client("order") is order  # the same identity keeps its key
    assert order.thumbprint in repr(keys)


def test_no_keys_when_off() -> None:
    keys = dpop.ClientKeys(enabled=False)
    assert keys.for_client("order") is None
    assert not keys.enabled


@pytest.mark.parametrize("required", [True, False])
async def test_install_checks_proofs_and_remembers_them_in_redis(
    store: redis.Redis, required: bool
) -> None:
    app = FastAPI()
    keys = dpop.install(app, CommonSettings(dpop=True), store, required=required, origins=[ORDER])
    assert app.state.dpop_keys is keys and keys.enabled
    assert app.state.hopauth_require_dpop is required
    validator = app.state.hopauth_dpop

    key = DPoPKey.generate()
    proof = key.proof("GET", "http://127.0.0.1:8002/orders", access_token="t")
    checked = await validator.validate(
        proof, method="GET", url="http://127.0.0.1:8002/orders", access_token="t"
    )
    # The jti is in Redis, so another replica (another validator, same store) refuses it.
    assert await store.exists(f"hopauth:dpop-jti:{checked.jti}") == 1
    replica = FastAPI()
    dpop.install(replica, CommonSettings(dpop=True), store, required=required, origins=[ORDER])
    with pytest.raises(InvalidDPoPProofError, match="replayed"):
        await replica.state.hopauth_dpop.validate(
            proof, method="GET", url="http://127.0.0.1:8002/orders", access_token="t"
        )


async def test_without_redis_the_replay_cache_is_the_process_own() -> None:
    app = FastAPI()
    dpop.install(app, CommonSettings(dpop=True), None, required=True, origins=[INVENTORY])
    validator = app.state.hopauth_dpop
    proof = DPoPKey.generate().proof("POST", "http://127.0.0.1:8003/reservations")
    await validator.validate(proof, method="POST", url="http://127.0.0.1:8003/reservations")
    with pytest.raises(InvalidDPoPProofError, match="replayed"):
        await validator.validate(proof, method="POST", url="http://127.0.0.1:8003/reservations")


async def test_proofs_must_name_the_service_own_url_not_the_host_it_was_sent() -> None:
    app = FastAPI()
    dpop.install(
        app, CommonSettings(dpop=True), None, required=True, origins=[ORDER, "http://order:8002"]
    )
    validator = app.state.hopauth_dpop
    assert validator.origins == (ORDER, "http://order:8002")
    key = DPoPKey.generate()
    for htu in (f"{ORDER}/orders", "http://order:8002/orders"):
        # The URL hopauth.fastapi passes is built from the first origin, never from Host.
        await validator.validate(key.proof("GET", htu), method="GET", url=f"{ORDER}/orders")
    proof = key.proof("GET", "http://evil.example/orders")
    with pytest.raises(InvalidDPoPProofError, match="htu does not match"):
        await validator.validate(proof, method="GET", url="http://evil.example/orders")


@pytest.mark.parametrize("origins", [[], ["127.0.0.1:8002"], ["ftp://files.example"]])
def test_install_refuses_to_check_proofs_without_a_url_of_its_own(origins: list[str]) -> None:
    with pytest.raises(ValueError, match=r"no URL of its own|not an http\(s\) URL"):
        dpop.install(FastAPI(), CommonSettings(dpop=True), None, required=True, origins=origins)


def test_install_keeps_only_the_origin_of_a_url_with_a_path() -> None:
    # GATEWAY_PUBLIC_URL=https://shop.example/app is a valid public URL: it must start.
    app = FastAPI()
    urls = ["https://shop.example/app", "http://gateway:8000/", "https://shop.example"]
    dpop.install(app, CommonSettings(dpop=True), None, required=False, origins=urls)
    assert app.state.hopauth_dpop.origins == ("https://shop.example", "http://gateway:8000")


@pytest.mark.parametrize(
    "settings",
    [CommonSettings(dpop=False), CommonSettings(dpop=True, propagation=Propagation.FORWARD)],
)
def test_install_when_off(settings: CommonSettings) -> None:
    app = FastAPI()
    keys = dpop.install(app, settings, None, required=True, origins=[])
    # hopauth then refuses bound tokens outright and takes bearer tokens, as before DPoP.
    assert app.state.hopauth_dpop is None
    assert app.state.hopauth_require_dpop is False
    assert keys.for_client("gateway") is None
