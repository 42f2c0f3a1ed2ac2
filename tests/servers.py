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
WORKER_READY_LINE = "Application startup complete"  # a worker's, just before it listens


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
    workers: int = 1,
    **env: str,
) -> Iterator[str]:
    """A server on a free port; yields its base URL. Without a database URL it starts the
    embedded default (GRAPHQL_API_DATA_DIR should then be in `env`). With `log`, the server's
    log lines are appended to it. `exit_code`: how it must end (-9 for one killed on purpose).
    `workers`: `serve --workers`."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT", "HOST")}
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    environ.update({"LOG_LEVEL": "info", **env})
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphql_api", "serve", "--port", str(port)]
        + (["--workers", str(workers)] if workers != 1 else []),
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = [] if log is None else log
    drain: threading.Thread | None = None
    try:
        assert proc.stderr is not None
        started = 0
        for line in proc.stderr:  # the server's own word that it is up
            seen.append(line)
            # With several workers, uvicorn's parent says it runs before any worker listens:
            # wait for each worker's start-up instead.
            started += WORKER_READY_LINE in line
            if (READY_LINE in line and workers == 1) or started == workers > 1:
                break
        else:
            raise AssertionError("server exited before start-up:\n" + "".join(seen))
        # Keep draining its log, so that a full pipe can never stall it.
        drain = threading.Thread(target=seen.extend, args=(proc.stderr,), daemon=True)
        drain.start()
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(stop)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the server did not stop on SIGINT") from None
        if log is not None and drain is not None:
            drain.join(timeout=30)  # every line it wrote is in `log` once this returns
    assert code == exit_code, f"the server exited with {code}"
