from __future__ import annotations

import pytest

from db.urls import DatabaseUrlError
from graphql_api.settings import Settings, SettingsError

STRONG = "k" * 40


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://u:p@h:5432/db",
        "postgresql://u:p@h:5432/db",
        "postgresql+asyncpg://u:p@h:5432/db",
        "postgresql+psycopg://u:p@h:5432/db",
    ],
)
def test_database_url_is_normalised_to_asyncpg(raw: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": raw})
    assert settings.database_url == "postgresql+asyncpg://u:p@h:5432/db"


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "not a url", "postgresql://u@h"])
def test_bad_database_url_is_refused_clearly(raw: str) -> None:
    with pytest.raises(DatabaseUrlError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": raw})


def test_defaults_use_the_embedded_database() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.environment == "development"
    assert settings.port == 8000


@pytest.mark.parametrize("secret", [None, "", "change-me", "short"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str | None) -> None:
    env = {"ENVIRONMENT": "production"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env(env)


def test_production_with_a_real_secret() -> None:
    settings = Settings.from_env({"ENVIRONMENT": "production", "SECRET_KEY": STRONG})
    assert settings.is_production


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE must be a number"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"DB_READ_POOL_SIZE": "0"}, "DB_READ_POOL_SIZE"),
        ({"PORT": "70000"}, "PORT"),
        ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_numbers_are_read() -> None:
    settings = Settings.from_env(
        {
            "DB_POOL_SIZE": "3",
            "DB_READ_POOL_SIZE": "2",
            "DB_POOL_TIMEOUT": "2.5",
            "DB_STATEMENT_TIMEOUT_MS": "100",
            "MAX_FRAGMENT_SPREADS": "7",
        }
    )
    assert (
        settings.pool_size,
        settings.read_pool_size,
        settings.pool_timeout,
        settings.statement_timeout_ms,
        settings.max_fragment_spreads,
    ) == (3, 2, 2.5, 100, 7)
