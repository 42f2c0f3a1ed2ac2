"""`graphql-api serve` as a new user runs it: no DATABASE_URL, so the embedded PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

READY_LINE = "Uvicorn running on"  # logged once the socket listens
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT", "HOST")}
    env["GRAPHQL_API_DATA_DIR"] = str(data_dir)
    return env


@contextmanager
def serving(data_dir: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphql_api", "serve", "--port", str(port)],
        env=cli_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        # Block on the server's own log until it says it is up (or dies).
        for line in proc.stderr:
            seen.append(line)
            if READY_LINE in line:
                break
        else:
            raise AssertionError("server exited before start-up:\n" + "".join(seen))
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=STARTUP_TIMEOUT_S)
        assert code == 0, "".join(seen)


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


def test_serve_on_a_clean_machine_then_again_with_the_same_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    with serving(data_dir) as base:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        page = httpx.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert "created" in seed_demo(data_dir)  # joins the running embedded server
        assert postmaster_running(data_dir)
    assert not postmaster_running(data_dir), "the embedded PostgreSQL outlived the server"

    with serving(data_dir) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert "already present" in seed_demo(data_dir)
    assert not postmaster_running(data_dir)
