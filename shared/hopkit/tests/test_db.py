"""The session dependency owns the transaction; URLs pick the async drivers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hopkit.db import SessionDep, async_url, create_engine, session_factory
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine(f"sqlite:///{tmp_path / 'db' / 'test.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    application = FastAPI()
    application.state.db_sessions = session_factory(engine)

    @application.post("/rows/{name}")
    async def add(name: str, session: SessionDep) -> dict[str, str]:
        session.add(Row(name=name))
        await session.flush()
        if name == "fail":
            raise RuntimeError("after the write")
        return {"name": name}

    @application.put("/rows/{name}")
    async def add_unflushed(name: str, session: SessionDep) -> dict[str, str]:
        session.add(Row(name=name))  # the conflict surfaces only at commit
        return {"name": name}

    @application.get("/rows")
    async def count(session: SessionDep) -> dict[str, int]:
        return {"rows": await session.scalar(select(func.count()).select_from(Row)) or 0}

    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
    await engine.dispose()


async def test_success_commits_and_failure_rolls_back(client: httpx.AsyncClient) -> None:
    assert (await client.post("/rows/kept")).status_code == 200
    assert (await client.post("/rows/fail")).status_code == 500
    assert (await client.get("/rows")).json() == {"rows": 1}


async def test_a_failed_commit_is_the_response_not_a_lost_200(client: httpx.AsyncClient) -> None:
    assert (await client.put("/rows/twice")).status_code == 200
    second = await client.put("/rows/twice")
    assert second.status_code == 500
    assert (await client.get("/rows")).json() == {"rows": 1}
