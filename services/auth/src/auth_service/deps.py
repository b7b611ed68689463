"""FastAPI dependencies, in one place: everything lives on app.state, built in the lifespan.

They are `async def` although they do no I/O: FastAPI runs plain `def`
dependencies in its thread pool, a costly hop on every request.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from .config import Settings
from .keys import KeyStore
from .login_throttle import LoginThrottle
from .oauth.server import HopAuthorizationServer


async def _server(request: Request) -> HopAuthorizationServer:
    server: HopAuthorizationServer = request.app.state.oauth_server
    return server


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


async def _login_slots(request: Request) -> asyncio.Semaphore:
    slots: asyncio.Semaphore = request.app.state.login_slots
    return slots


async def _login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


ServerDep = Annotated[HopAuthorizationServer, Depends(_server)]
SettingsDep = Annotated[Settings, Depends(_settings)]
KeysDep = Annotated[KeyStore, Depends(_keys)]
LoginSlotsDep = Annotated[asyncio.Semaphore, Depends(_login_slots)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(_login_throttle)]
