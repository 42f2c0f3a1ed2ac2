from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

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
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
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
            "LOGIN_MAX_FAILURES_PER_ACCOUNT": "250",
            "MAX_FRAGMENT_SPREADS": "7",
        }
    )
    assert (
        settings.pool_size,
        settings.read_pool_size,
        settings.pool_timeout,
        settings.statement_timeout_ms,
        settings.login_max_failures_per_account,
        settings.max_fragment_spreads,
    ) == (3, 2, 2.5, 100, 250, 7)


def documented_variables() -> list[str]:
    """The environment variables in README's Configuration table (column "variable") and
    Security table (column "setting"): what a user is told they can set."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    names: list[str] = []
    for section in ("## Configuration", "## Security"):
        body = readme.split(section, 1)[1].split("\n## ", 1)[0]
        rows = [line for line in body.splitlines() if line.startswith("|")]
        header = [c.strip() for c in rows[0].strip("|").split("|")]
        column = header.index("variable" if section == "## Configuration" else "setting")
        for row in rows[2:]:
            cell = row.strip("|").split("|")[column]
            for token in re.findall(r"`([^`]+)`", cell):
                name = token.split("=", 1)[0]
                if re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
                    names.append(name)
    return sorted(set(names))


# Values to try for a variable, until one is accepted and changes the settings.
CANDIDATES = (
    "off",
    "on",
    "7",
    "0.5",
    "production",
    "debug",
    "0.0.0.0",
    "https://app.example.com",
    "postgresql://u@h:5432/db",
    "/tmp/graphql-api-elsewhere",
    "z" * 40,
    "json",
    "only",  # TRUSTED_DOCUMENTS
)


def test_the_readme_documents_the_settings() -> None:
    names = documented_variables()
    assert len(names) > 30, names  # the tables were found and read
    assert {"DATABASE_URL", "INTROSPECTION", "CORS_ORIGINS", "MAX_NODES"} <= set(names)


@pytest.mark.parametrize("name", documented_variables())
def test_every_documented_variable_is_read_and_changes_the_settings(name: str) -> None:
    base_env = {"SECRET_KEY": STRONG}
    baseline = Settings.from_env(base_env)
    for value in CANDIDATES:
        try:
            changed = Settings.from_env({**base_env, name: value})
        except (SettingsError, DatabaseUrlError):
            continue
        if changed != baseline:
            return
    raise AssertionError(f"{name} is documented in README.md but Settings.from_env ignores it")


def test_every_setting_is_used_by_the_server() -> None:
    """A field of Settings that no code outside settings.py reads would be a setting that
    changes nothing."""
    root = Path(__file__).resolve().parent.parent
    code = "\n".join(
        p.read_text()
        for folder in ("graphql_api", "db")
        for p in (root / folder).rglob("*.py")
        if p.name != "settings.py"
    )
    properties = {
        name: inspect.getsource(value.fget)
        for name, value in vars(Settings).items()
        if isinstance(value, property)
    }

    def used(name: str) -> bool:
        readers = [name] + [p for p, src in properties.items() if f"self.{name}" in src]
        return any(re.search(rf"\.{reader}\b", code) for reader in readers)

    assert [f.name for f in fields(Settings) if not used(f.name)] == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"INTROSPECTION": "on", "ENVIRONMENT": "production"}, ("introspection_enabled", True)),
        ({"INTROSPECTION": "off"}, ("introspection_enabled", False)),
        ({"GRAPHIQL": "on", "ENVIRONMENT": "production"}, ("graphiql_enabled", True)),
        ({"GRAPHIQL": "no"}, ("graphiql_enabled", False)),
        ({"BATCHING": "true"}, ("batching", True)),
        ({"LEGACY_GRAPHQL_WS": "1"}, ("legacy_graphql_ws", True)),
        ({"FAST_PATH": "off"}, ("fast_path", False)),
        ({}, ("metrics_enabled", True)),
        ({"ENVIRONMENT": "production"}, ("metrics_enabled", False)),
        ({"METRICS": "on", "ENVIRONMENT": "production"}, ("metrics_enabled", True)),
        ({}, ("log_format_in_force", "text")),
        ({"ENVIRONMENT": "production"}, ("log_format_in_force", "json")),
        ({"LOG_FORMAT": "JSON"}, ("log_format_in_force", "json")),
        (
            {"CORS_ORIGINS": "https://app.example.com, http://localhost:5173/"},
            ("cors_origins", ("https://app.example.com", "http://localhost:5173")),
        ),
    ],
)
def test_switches_and_origins(env: dict[str, str], expected: tuple[str, object]) -> None:
    settings = Settings.from_env({"SECRET_KEY": STRONG, **env})
    assert getattr(settings, expected[0]) == expected[1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTROSPECTION": "maybe"}, "INTROSPECTION must be on or off"),
        ({"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"),
    ],
)
def test_bad_switches_and_origins_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "postgresql://u@bouncer:6432/db?pgbouncer=true"}, True),
        ({"DATABASE_URL": "postgresql://u@bouncer:6432/db?pgbouncer=false"}, False),
        ({"DATABASE_URL": "postgresql://u@bouncer:6432/db", "DB_PGBOUNCER": "on"}, True),
        (
            {
                "DATABASE_URL": "postgresql://u@bouncer:6432/db?pgbouncer=true",
                "DB_PGBOUNCER": "off",
            },
            False,
        ),
    ],
)
def test_pgbouncer_from_the_url_or_the_switch(env: dict[str, str], expected: bool) -> None:
    settings = Settings.from_env(env)
    assert settings.pgbouncer is expected
    # Our parameter, not PostgreSQL's: never sent to the server.
    assert settings.database_url == "postgresql+asyncpg://u@bouncer:6432/db"


def test_the_direct_url_and_trusted_proxies() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_DIRECT_URL": "postgres://u:secret@db:5432/app",
            "FORWARDED_ALLOW_IPS": "127.0.0.1, 10.0.0.0/8",
        }
    )
    assert settings.database_direct_url == "postgresql+asyncpg://u:secret@db:5432/app"
    assert settings.forwarded_allow_ips == "127.0.0.1,10.0.0.0/8"
    assert "secret" not in settings.describe()
    with pytest.raises(SettingsError, match="FORWARDED_ALLOW_IPS"):
        Settings.from_env({"FORWARDED_ALLOW_IPS": "proxy.internal"})
    with pytest.raises(DatabaseUrlError, match="DATABASE_DIRECT_URL"):
        Settings.from_env({"DATABASE_DIRECT_URL": "mysql://u@h/db"})
