"""An in-doubt commit, for real: the server process dies after PostgreSQL committed a mutation and
before the client got the answer. The client retries with its Idempotency-Key on a restarted
server and gets the first outcome; the task exists once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.databases import dsn
from tests.gql import CREATE_TASK, Api, project
from tests.servers import serving

# Loaded by the server's interpreter at start-up (PYTHONPATH): after the commit of a
# transaction that claimed a key starting with "crash-after-commit", the process kills itself
# (SIGKILL: no handler, no clean-up, no response), as a crash or an OOM kill would.
CRASH_HOOK = """
import os
import signal

from sqlalchemy.ext.asyncio import AsyncSession

_commit = AsyncSession.commit


async def commit(self):
    await _commit(self)
    if str(self.info.get("idempotency_key", "")).startswith("crash-after-commit"):
        os.kill(os.getpid(), signal.SIGKILL)


AsyncSession.commit = commit
"""


def keyed(token: str, key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "idempotency-key": key}


async def test_a_commit_whose_answer_was_lost_is_replayed_after_a_restart(
    fresh_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "sitecustomize.py").write_text(CRASH_HOOK)
    pythonpath = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    with serving(fresh_database_url, exit_code=-signal.SIGKILL, PYTHONPATH=pythonpath) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            api = Api(http)
            owner = await api.register()
            ws = await api.workspace(owner)
            project_id = (await project(api, owner, ws["id"]))["id"]
            body = {
                "query": CREATE_TASK,
                "variables": {"input": {"projectId": project_id, "title": "in doubt"}},
            }
            # A client that lost a response retries; the server has not crashed (yet).
            sent = await http.post("/graphql", json=body, headers=keyed(owner.token, "lost-1"))
            retried = await http.post("/graphql", json=body, headers=keyed(owner.token, "lost-1"))
            assert retried.headers["idempotent-replayed"] == "true"
            assert retried.content == sent.content

            with pytest.raises(httpx.TransportError):  # the connection dies, no answer
                await http.post(
                    "/graphql", json=body, headers=keyed(owner.token, "crash-after-commit-1")
                )

    # PostgreSQL committed it: the task is there once already, whatever the client saw.
    conn = await asyncpg.connect(dsn(fresh_database_url))
    try:
        count = "SELECT count(*) FROM tasks WHERE title = 'in doubt'"
        assert await conn.fetchval(count) == 2  # "lost-1" and the in-doubt one
        with serving(fresh_database_url) as address:
            async with httpx.AsyncClient(base_url=f"http://{address}") as http:
                retry = await http.post(
                    "/graphql", json=body, headers=keyed(owner.token, "crash-after-commit-1")
                )
        assert retry.status_code == 200
        assert retry.headers["idempotent-replayed"] == "true"
        task = retry.json()["data"]["createTask"]["task"]
        assert task["identifier"] == "WEB-2"
        assert await conn.fetchval(count) == 2  # nothing written twice
    finally:
        await conn.close()
