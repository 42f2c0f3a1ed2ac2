"""The asyncpg-pooled engine and the session factory."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def server_settings(statement_timeout_ms: int, application_name: str) -> dict[str, str]:
    settings = {"application_name": application_name}
    if statement_timeout_ms > 0:
        # A default for every connection; requests may tighten it with SET LOCAL.
        settings["statement_timeout"] = str(statement_timeout_ms)
    return settings


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 10.0,
    pool_recycle: int = 1800,
    statement_timeout_ms: int = 5000,
    application_name: str = "graphql-api",
) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=pool_recycle,
        pool_pre_ping=True,
        connect_args={
            "server_settings": server_settings(statement_timeout_ms, application_name),
            "timeout": 10,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
