"""Debian's PgBouncer in transaction mode in front of a PostgreSQL, as a child process: its ini
and userlist in a temporary folder, a free port, trust authentication. Used by the tests
(tests/test_pgbouncer.py) and by `make bench BENCH_ARGS=--pgbouncer`."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

READY_LINE = "process up"  # logged once it listens


def pgbouncer_binary() -> str | None:
    """Debian installs it in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    return tuple(int(n) for n in found.groups()) if found else (0,)


def run_as(host: str) -> int | None:
    """PgBouncer refuses to run as root. It runs as the user owning the unix socket's folder
    (the embedded PostgreSQL's data directory is private to that user), else as nobody."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return os.stat(host).st_uid
    return pwd.getpwnam("nobody").pw_uid


class Bouncer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, database_url: str) -> str:
        """The same database, through PgBouncer."""
        through = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return through.difference_update_query(["host"]).render_as_string(hide_password=False)


@contextmanager
def pgbouncer(postgres_url: str, pool_size: int = 3) -> Iterator[Bouncer]:
    """PgBouncer for every database of the server of `postgres_url`. A small pool, so that
    clients take turns on the same server connections, as they do in production."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("needs Debian's pgbouncer: apt-get install pgbouncer")
    url = make_url(postgres_url)
    host = str(url.query.get("host") or url.host or "127.0.0.1")
    port = url.port or 5432
    user = url.username or "postgres"
    listen = free_port()
    folder = Path(tempfile.mkdtemp(prefix="gqlapi-test-pgbouncer-"))
    folder.chmod(0o755)
    userlist = folder / "userlist.txt"
    userlist.write_text(f'"{user}" ""\n')
    lines = [
        "[databases]",
        f"* = host={host} port={port}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {listen}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {userlist}",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 500",
        f"admin_users = {user}",
    ]
    if version(binary) >= (1, 21):
        # Its own prepared-statement support off: the server must not rely on it.
        lines.append("max_prepared_statements = 0")
    ini = folder / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    for path in (userlist, ini):
        path.chmod(0o644)
    proc = subprocess.Popen(
        [binary, str(ini)],
        user=run_as(host),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if READY_LINE in line:
                break
        else:
            raise AssertionError("pgbouncer exited before start-up:\n" + "".join(seen))
        threading.Thread(target=seen.extend, args=(proc.stderr,), daemon=True).start()
        yield Bouncer(listen)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
