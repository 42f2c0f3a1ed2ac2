"""Running `graphql-api serve` as a real process, as users run it, for tests that need real
sockets (WebSocket clients, several server processes, the HTTP audit)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

READY_LINE = "Uvicorn running on"  # logged once the socket listens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    database_url: str | None,
    stop: signal.Signals = signal.SIGINT,
    log: list[str] | None = None,
    exit_code: int = 0,
    **env: str,
) -> Iterator[str]:
    """A server on a free port; yields its base URL. Without a database URL it starts the
    embedded default (GRAPHQL_API_DATA_DIR should then be in `env`). With `log`, the server's
    log lines are appended to it. `exit_code`: how it must end (-9 for one killed on purpose)."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT", "HOST")}
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    environ.update({"LOG_LEVEL": "info", **env})
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphql_api", "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = [] if log is None else log
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the server's own word that it is up
            seen.append(line)
            if READY_LINE in line:
                break
        else:
            raise AssertionError("server exited before start-up:\n" + "".join(seen))
        # Keep draining its log, so that a full pipe can never stall it.
        threading.Thread(target=seen.extend, args=(proc.stderr,), daemon=True).start()
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(stop)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the server did not stop on SIGINT") from None
    assert code == exit_code, f"the server exited with {code}"
