"""`graphql-api serve` as a new user runs it: no DATABASE_URL, so the embedded PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers import serving

STARTUP_TIMEOUT_S = 90


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT", "HOST")}
    env["GRAPHQL_API_DATA_DIR"] = str(data_dir)
    return env


@contextmanager
def serving_embedded(data_dir: Path, stop: signal.Signals = signal.SIGINT) -> Iterator[str]:
    with serving(None, stop, GRAPHQL_API_DATA_DIR=str(data_dir)) as host:
        yield f"http://{host}"


def seed_demo(data_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "graphql_api", "seed", "--demo"],
        env=cli_env(data_dir),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S,
        check=True,
    )
    return done.stdout


def postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_on_a_clean_machine_then_again_with_the_same_data(embedded_data_dir: Path) -> None:
    data_dir = embedded_data_dir
    with serving_embedded(data_dir) as base:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        page = httpx.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert "created" in seed_demo(data_dir)  # joins the running embedded server
        assert postmaster_running(data_dir)
    assert not postmaster_running(data_dir), "the embedded PostgreSQL outlived the server"

    # Stopped the way service managers stop things (SIGTERM) this time.
    with serving_embedded(data_dir, signal.SIGTERM) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert "already present" in seed_demo(data_dir)
    assert not postmaster_running(data_dir), "the embedded PostgreSQL outlived a SIGTERM"


def test_log_level_is_honoured_with_the_embedded_default(embedded_data_dir: Path) -> None:
    """The embedded default migrates before serving; Alembic's logging set-up must not win."""
    debug: list[str] = []
    with serving(None, GRAPHQL_API_DATA_DIR=str(embedded_data_dir), LOG_LEVEL="debug", log=debug):
        pass
    info: list[str] = []
    with serving(None, GRAPHQL_API_DATA_DIR=str(embedded_data_dir), LOG_LEVEL="info", log=info):
        pass
    started = [line for line in debug if "DEBUG graphql_api.app starting with" in line]
    assert len(started) == 1 and "secret" not in started[0]
    assert not [line for line in info if " DEBUG " in line]
    assert [line for line in info if " INFO " in line]  # our format, at the level asked


def test_documented_switches_reach_a_live_server(fresh_database_url: str) -> None:
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "s" * 40,
        "INTROSPECTION": "on",
        "GRAPHIQL": "off",
        "CORS_ORIGINS": "https://app.example.com",
    }
    with serving(fresh_database_url, **env) as host:
        base = f"http://{host}"
        schema = httpx.post(
            f"{base}/graphql", json={"query": "{ __schema { queryType { name } } }"}
        )
        assert schema.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}
        page = httpx.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        preflight = httpx.options(
            f"{base}/graphql",
            headers={
                "origin": "https://app.example.com",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
