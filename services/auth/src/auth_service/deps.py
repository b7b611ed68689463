"""FastAPI dependencies, in one place: everything lives on app.state, built in the lifespan.

They are `async def` although they do no I/O: FastAPI runs plain `def`
dependencies in its thread pool, a costly hop on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .config import Settings
from .keys import KeyStore
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


ServerDep = Annotated[HopAuthorizationServer, Depends(_server)]
SettingsDep = Annotated[Settings, Depends(_settings)]
KeysDep = Annotated[KeyStore, Depends(_keys)]
