"""An outside attack on the role lock of commit 286d73c: every write holds its author's
membership FOR SHARE until it commits, and membership changes take the workspace row FOR NO KEY
UPDATE, then the changer's role FOR SHARE. A role taken away during a write must wait for that
write; writers and membership changes must never end in INTERNAL, hang, or let a write through by
someone whose role was already taken away. Where they wait on each other in a circle (a document
that writes and then changes memberships; two documents taking two workspaces in opposite
orders), PostgreSQL breaks the deadlock and the server runs the rolled-back operation again
(graphql_api/app.py): both must succeed.

Deterministic cases pause a request at a chosen point (as test_concurrency does) or hold a row
from a side connection (standing for another transaction in flight that holds it); the storms run
many real requests at once without pauses. No timed assertions: bounded waits detect hangs only.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import sqlalchemy.exc

from db.repositories.tasks import TaskRepository
from db.urls import asyncpg_dsn
from graphql_api.failures import CONFLICT, classify, is_retryable
from graphql_api.resolvers import labels as label_resolvers
from graphql_api.resolvers import workspaces as workspace_resolvers
from tests.conftest import asgi_websocket, pause_once
from tests.gql import (
    ADD_MEMBER,
    CHANGE_MEMBER_ROLE,
    CREATE_COMMENT,
    CREATE_LABEL,
    CREATE_PROJECT,
    REMOVE_MEMBER,
    UPDATE_TASK,
    Account,
    Api,
    project,
    task,
)
from tests.test_one_statement_attack import _waiting_on_a_lock

HANG = 60  # seconds: past this, a request is taken to hang

CREATE_TASK_AT_HAND = """mutation($input: CreateTaskInput!) {
  createTask(input: $input) { task { id number } userErrors { code message field } } }"""
CREATE_TASK_READ = """mutation($input: CreateTaskInput!) {
  createTask(input: $input) { task { id number project { name } } userErrors { code message field } } }"""
DELETE_TASK = """mutation($input: DeleteTaskInput!) {
  deleteTask(input: $input) { task { id } userErrors { code message field } } }"""
RESTORE_TASK = """mutation($input: RestoreTaskInput!) {
  restoreTask(input: $input) { task { id } userErrors { code message field } } }"""
ARCHIVE = """mutation($input: ArchiveProjectInput!) {
  archiveProject(input: $input) { project { id } userErrors { code message field } } }"""
UNARCHIVE = """mutation($input: UnarchiveProjectInput!) {
  unarchiveProject(input: $input) { project { id } userErrors { code message field } } }"""
UPDATE_PROJECT = """mutation($input: UpdateProjectInput!) {
  updateProject(input: $input) { project { id } userErrors { code message field } } }"""
ROLES = """query($s: String!) { workspace(slug: $s) { members(first: 50) { nodes { role user { id } } } } }"""

# A write and a membership change in one document: one transaction, two fields.
WRITE_THEN_CHANGE = """mutation($label: CreateLabelInput!, $change: ChangeMemberRoleInput!) {
  l: createLabel(input: $label) { label { id } userErrors { code } }
  c: changeMemberRole(input: $change) { membership { role } userErrors { code } } }"""
WRITE_THEN_LEAVE = """mutation($label: CreateLabelInput!, $leave: RemoveMemberInput!) {
  l: createLabel(input: $label) { label { id } userErrors { code } }
  c: removeMember(input: $leave) { removedUserId userErrors { code } } }"""
TWO_CHANGES = """mutation($a: ChangeMemberRoleInput!, $b: ChangeMemberRoleInput!) {
  a: changeMemberRole(input: $a) { membership { role } userErrors { code } }
  b: changeMemberRole(input: $b) { membership { role } userErrors { code } } }"""

_names = itertools.count(1)


async def post(
    api: Api,
    query: str,
    variables: dict[str, Any],
    token: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Any answer, whatever its status (an INTERNAL or a TIMEOUT is a finding, not a crash of
    the test), with the status kept under "_status"."""
    response = await api.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}", **(headers or {})},
    )
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"errors": [{"message": response.text, "extensions": {"code": "NOT_JSON"}}]}
    body["_status"] = response.status_code
    return body


async def over_websocket(
    api: Api, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    """As post, over graphql-transport-ws to the same app: the `next` payload (or the `error`
    message's errors)."""
    app = api.http._transport.app  # type: ignore[attr-defined]  # httpx.ASGITransport
    async with asgi_websocket(app) as ws:
        await ws.init(token)
        payload = {"query": query, "variables": variables}
        await ws.send({"id": "1", "type": "subscribe", "payload": payload})
        message = await ws.receive()
        if message["type"] == "error":
            return {"errors": message["payload"]}
        assert message["type"] == "next", message
        assert (await ws.receive())["type"] == "complete"
        body: dict[str, Any] = message["payload"]
        return body


def top_errors(body: dict[str, Any]) -> list[str]:
    return [
        f"{e.get('extensions', {}).get('code')}: {e.get('message')}" for e in body.get("errors", [])
    ]


def field_errors(body: dict[str, Any]) -> list[str]:
    codes = []
    for value in (body.get("data") or {}).values():
        if isinstance(value, dict):
            codes += [e["code"] for e in value.get("userErrors") or []]
    return codes


async def roles(api: Api, owner: Account, slug: str) -> dict[str, str]:
    data = await api.ok(ROLES, {"s": slug}, owner.token)
    return {n["user"]["id"]: n["role"] for n in data["workspace"]["members"]["nodes"]}


async def audit_actions(api: Api, owner: Account, slug: str) -> list[str]:
    log = await api.ok(
        "query($s: String!) { workspace(slug: $s) { auditEvents(first: 50) { nodes { action } } } }",
        {"s": slug},
        owner.token,
    )
    return [n["action"] for n in log["workspace"]["auditEvents"]["nodes"]]


def change(ws: dict[str, Any], user: Account, role: str) -> dict[str, Any]:
    return {"input": {"workspaceId": ws["id"], "userId": user.id, "role": role}}


# --- 1. A write and a membership change in one document ------------------------------------


@pytest.mark.parametrize("second", ["changes another member's role", "leaves"])
async def test_a_document_that_writes_then_changes_memberships_does_not_deadlock(
    live_api: Api, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, second: str
) -> None:
    """Admin A sends one document: createLabel, then a membership change in the same workspace
    (changeMemberRole of member C, or leaving). The createLabel holds A's membership FOR SHARE.
    Meanwhile an owner demotes A: the owner's change takes the workspace row FOR NO KEY UPDATE
    and waits for A's membership. A's second field then wants the workspace row: each waits for
    the other."""
    owner = await live_api.register("owner")
    admin = await live_api.register("admin")
    other = await live_api.register("other")
    ws = await live_api.workspace(owner)
    await live_api.add(owner, ws["id"], admin, "ADMIN")
    await live_api.add(owner, ws["id"], other, "MEMBER")
    checked, release = pause_once(monkeypatch, label_resolvers, "authorize")
    label = {"workspaceId": ws["id"], "name": "mine", "color": "#123456"}
    if second == "leaves":
        query = WRITE_THEN_LEAVE
        variables = {"label": label, "leave": {"workspaceId": ws["id"], "userId": admin.id}}
    else:
        query = WRITE_THEN_CHANGE
        variables = {"label": label, "change": change(ws, other, "VIEWER")["input"]}
    doc = asyncio.create_task(post(live_api, query, variables, admin.token))
    await checked.wait()
    taking = asyncio.create_task(
        post(live_api, CHANGE_MEMBER_ROLE, change(ws, admin, "MEMBER"), owner.token)
    )
    await _waiting_on_a_lock(asyncpg_dsn(fresh_database_url))  # the owner's change, on A's row
    release.set()
    async with asyncio.timeout(HANG):
        answered, taken = await doc, await taking
    assert top_errors(answered) == [] and top_errors(taken) == [], (answered, taken)


async def test_writes_then_membership_changes_in_one_document_under_load(live_api: Api) -> None:
    """The same without pauses: admins send write-then-change documents while owners change
    the admins' roles back and forth."""
    owner = await live_api.register("owner")
    ws = await live_api.workspace(owner)
    admins = [await live_api.register(f"admin{i}") for i in range(3)]
    members = [await live_api.register(f"member{i}") for i in range(3)]
    for a in admins:
        await live_api.add(owner, ws["id"], a, "ADMIN")
    for m in members:
        await live_api.add(owner, ws["id"], m, "MEMBER")
    failures: list[Any] = []

    async def admin_loop(a: Account, m: Account) -> None:
        for i in range(15):
            variables = {
                "label": {"workspaceId": ws["id"], "name": f"{a.id[-6:]}-{i}", "color": "#123456"},
                "change": change(ws, m, "VIEWER" if i % 2 else "MEMBER")["input"],
            }
            body = await post(live_api, WRITE_THEN_CHANGE, variables, a.token)
            if top_errors(body):
                failures.append(("admin doc", top_errors(body)))

    async def owner_loop() -> None:
        for i in range(30):
            a = admins[i % len(admins)]
            role = "MEMBER" if (i // len(admins)) % 2 == 0 else "ADMIN"
            body = await post(live_api, CHANGE_MEMBER_ROLE, change(ws, a, role), owner.token)
            if top_errors(body):
                failures.append(("owner change", top_errors(body)))

    async with asyncio.timeout(HANG * 2):
        await asyncio.gather(
            owner_loop(), *(admin_loop(a, m) for a, m in zip(admins, members, strict=True))
        )
    # PostgreSQL may break a deadlock more often than the server runs an operation again: the
    # client is then told CONFLICT (rolled back, send it again). Nothing else may happen.
    unexpected = [f for f in failures if any(not e.startswith("CONFLICT:") for e in f[1])]
    assert unexpected == [], f"{len(failures)} failed: {Counter(str(f) for f in failures)}"
    assert len(failures) <= 3, f"{len(failures)} gave up: {Counter(str(f) for f in failures)}"


@pytest.mark.parametrize("second_over", ["http", "websocket"])
async def test_two_documents_changing_memberships_of_two_workspaces_in_opposite_orders(
    live_api: Api, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, second_over: str
) -> None:
    """An owner of two workspaces changes a role in X then in Y in one document; another owner
    of both, in Y then in X. Each field takes its workspace row FOR NO KEY UPDATE until the
    commit: the two documents take X and Y in opposite orders. The second document, which
    waits first and so is the one PostgreSQL rolls back, runs again whether it came over HTTP
    or over a WebSocket (before, a WebSocket client got CONFLICT)."""
    o1 = await live_api.register("o1")
    o2 = await live_api.register("o2")
    m = [await live_api.register(f"m{i}") for i in range(4)]
    x = await live_api.workspace(o1, "X")
    y = await live_api.workspace(o1, "Y")
    for ws in (x, y):
        await live_api.add(o1, ws["id"], o2, "OWNER")
        for u in m:
            await live_api.add(o1, ws["id"], u, "MEMBER")
    locked, release = pause_once(monkeypatch, workspace_resolvers, "_role_locked")
    first = asyncio.create_task(
        post(
            live_api,
            TWO_CHANGES,
            {"a": change(x, m[0], "VIEWER")["input"], "b": change(y, m[1], "VIEWER")["input"]},
            o1.token,
        )
    )
    await locked.wait()  # o1 holds X
    variables = {"a": change(y, m[2], "VIEWER")["input"], "b": change(x, m[3], "VIEWER")["input"]}
    send = post if second_over == "http" else over_websocket
    second = asyncio.create_task(send(live_api, TWO_CHANGES, variables, o2.token))
    await _waiting_on_a_lock(asyncpg_dsn(fresh_database_url))  # o2 holds Y, waits for X
    release.set()
    async with asyncio.timeout(HANG):
        a, b = await first, await second
    assert top_errors(a) == [] and top_errors(b) == [], (a, b)


# --- 2. createTask does not hold its author's role -------------------------------------------


@pytest.mark.parametrize("mode", ["payload read", "idempotency key"])
async def test_a_demotion_during_a_create_task_waits_for_it(
    live_api: Api, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """As test_a_role_taken_away_during_a_write_waits_for_it, for createTask in a transaction
    (its payload reads the project, or it carries an Idempotency-Key): the member's create has
    written its task, not yet committed; an owner makes the member a VIEWER. The demotion must
    wait for the create's commit (or the create be refused): createTask's write holds the
    member's role FOR SHARE until the commit (before, nothing made the demotion wait: it
    committed first, and the member's task after it)."""
    owner = await live_api.register("owner")
    member = await live_api.register("member")
    ws = await live_api.workspace(owner)
    await live_api.add(owner, ws["id"], member, "MEMBER")
    proj = await project(live_api, owner, ws["id"])
    written, release = pause_once(monkeypatch, TaskRepository, "create")
    variables = {"input": {"projectId": proj["id"], "title": "by the member"}}
    if mode == "payload read":
        creating = asyncio.create_task(post(live_api, CREATE_TASK_READ, variables, member.token))
    else:
        creating = asyncio.create_task(
            post(
                live_api,
                CREATE_TASK_AT_HAND,
                variables,
                member.token,
                headers={"idempotency-key": f"k-{next(_names)}"},
            )
        )
    await written.wait()
    taking = asyncio.create_task(
        post(live_api, CHANGE_MEMBER_ROLE, change(ws, member, "VIEWER"), owner.token)
    )
    waiting = asyncio.create_task(_waiting_on_a_lock(asyncpg_dsn(fresh_database_url)))
    done, _ = await asyncio.wait({taking, waiting}, return_when=asyncio.FIRST_COMPLETED)
    demoted_first = taking in done and waiting not in done
    waiting.cancel()
    release.set()
    async with asyncio.timeout(HANG):
        created, taken = await creating, await taking
    assert top_errors(created) == [] and top_errors(taken) == [], (created, taken)
    assert field_errors(taken) == [], taken
    create_ok = field_errors(created) == []
    assert not (demoted_first and create_ok), (
        "the demotion committed while the member's createTask was still open, and the task "
        f"committed after it: {created}; audit (newest first): "
        f"{await audit_actions(live_api, owner, ws['slug'])}"
    )


async def test_a_create_task_waiting_for_its_counter_holds_its_role(
    live_api: Api, fresh_database_url: str
) -> None:
    """createTask alone (autocommit, payload at hand) checks the role again in its write, as it
    locks the project's counter row. While another transaction holds the counter row (another
    create, an archive: here a side connection), the member's create waits; an owner makes the
    member a VIEWER meanwhile. The write holds the member's role FOR SHARE as it waits, so the
    demotion waits for the create: the task is written by a MEMBER, then the member is a VIEWER
    (before, the demotion committed first and the waiting write, reading roles with its older
    snapshot, was still written: a VIEWER's task)."""
    owner = await live_api.register("owner")
    member = await live_api.register("member")
    ws = await live_api.workspace(owner)
    await live_api.add(owner, ws["id"], member, "MEMBER")
    proj = await project(live_api, owner, ws["id"])
    await task(live_api, owner, proj["id"])  # the counter exists and is in use
    from graphql_api.schema.relay import parse_id

    project_id = parse_id(proj["id"], "Project", ["id"])
    dsn = asyncpg_dsn(fresh_database_url)
    locker = await asyncpg.connect(dsn)
    holding = locker.transaction()
    await holding.start()
    try:
        await locker.execute("SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE", project_id)
        creating = asyncio.create_task(
            post(
                live_api,
                CREATE_TASK_AT_HAND,
                {"input": {"projectId": proj["id"], "title": "by the member"}},
                member.token,
            )
        )
        await _waiting_on_a_lock(dsn)  # the create, on the counter row
        demoting = asyncio.create_task(
            post(live_api, CHANGE_MEMBER_ROLE, change(ws, member, "VIEWER"), owner.token)
        )
        await _waiting_on_a_lock(dsn, 2)  # the demotion, on the member's role the create holds
        assert not creating.done() and not demoting.done()
    finally:
        await holding.rollback()
        await locker.close()
    async with asyncio.timeout(HANG):
        created, demoted = await asyncio.gather(creating, demoting)
    assert top_errors(created) == [] and field_errors(created) == [], created
    assert top_errors(demoted) == [] and field_errors(demoted) == [], demoted
    assert (await roles(live_api, owner, ws["slug"]))[member.id] == "VIEWER"
    late = await post(
        live_api,
        CREATE_TASK_AT_HAND,
        {"input": {"projectId": proj["id"], "title": "late"}},
        member.token,
    )
    assert field_errors(late) == ["FORBIDDEN"], late


# --- 3. Storms of single-field writes and membership changes ---------------------------------


@dataclass
class World:
    ws: dict[str, Any]
    owners: list[Account]
    writers: list[Account]
    projects: list[dict[str, Any]]
    tasks: list[str]
    comments: list[tuple[Account, str]] = field(default_factory=list)
    failures: list[tuple[str, str, list[str], int]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


async def build(api: Api, writers: int = 6) -> World:
    owners = [await api.register("owner0"), await api.register("owner1")]
    ws = await api.workspace(owners[0])
    await api.add(owners[0], ws["id"], owners[1], "OWNER")
    people = [await api.register(f"w{i}") for i in range(writers)]
    for i, p in enumerate(people):
        await api.add(owners[0], ws["id"], p, "ADMIN" if i % 2 else "MEMBER")
    projects = [await project(api, owners[0], ws["id"], key) for key in ("AAA", "BBB")]
    tasks = [(await task(api, owners[0], p["id"]))["id"] for p in projects for _ in range(4)]
    return World(ws, owners, people, projects, tasks)


async def record(world: World, name: str, body: dict[str, Any]) -> dict[str, Any]:
    errors = top_errors(body)
    if errors or body["_status"] != 200:
        world.failures.append((name, str(body.get("extensions") or ""), errors, body["_status"]))
    codes = field_errors(body)
    world.outcomes[f"{name}:{','.join(codes) or 'ok'}"] += 1
    return body


async def write_once(api: Api, world: World, who: Account, rnd: random.Random) -> None:
    ws = world.ws
    kind = rnd.choice(
        [
            "updateTask",
            "createComment",
            "createLabel",
            "createTask",
            "createTaskRead",
            "createTaskKey",
            "deleteTask",
            "restoreTask",
            "archive",
            "createProject",
            "updateProject",
        ]
    )
    t = rnd.choice(world.tasks)
    p = rnd.choice(world.projects)["id"]
    n = next(_names)
    headers = None
    if kind == "updateTask":
        query, variables = UPDATE_TASK, {"input": {"id": t, "title": f"t{n}"}}
    elif kind == "createComment":
        query, variables = CREATE_COMMENT, {"input": {"taskId": t, "body": f"c{n}"}}
    elif kind == "createLabel":
        query = CREATE_LABEL
        variables = {"input": {"workspaceId": ws["id"], "name": f"l{n}", "color": "#abcdef"}}
    elif kind in ("createTask", "createTaskRead", "createTaskKey"):
        query = CREATE_TASK_READ if kind == "createTaskRead" else CREATE_TASK_AT_HAND
        variables = {"input": {"projectId": p, "title": f"n{n}"}}
        if kind == "createTaskKey":
            headers = {"idempotency-key": f"key-{n}"}
    elif kind == "deleteTask":
        query, variables = DELETE_TASK, {"input": {"id": t}}
    elif kind == "restoreTask":
        query, variables = RESTORE_TASK, {"input": {"id": t}}
    elif kind == "archive":
        query = rnd.choice([ARCHIVE, UNARCHIVE, UNARCHIVE])
        variables = {"input": {"id": p}}
    elif kind == "createProject":
        query = CREATE_PROJECT
        variables = {"input": {"workspaceId": ws["id"], "key": f"P{n}", "name": f"p{n}"}}
    else:
        query, variables = UPDATE_PROJECT, {"input": {"id": p, "name": f"p{n}"}}
    await record(world, kind, await post(api, query, variables, who.token, headers))


async def change_once(api: Api, world: World, who: Account, rnd: random.Random) -> None:
    ws = world.ws
    target = rnd.choice(world.writers)
    kind = rnd.choice(["role", "role", "role", "remove+add"])
    if kind == "role":
        role = rnd.choice(["MEMBER", "VIEWER", "ADMIN"])
        await record(
            world,
            "changeRole",
            await post(api, CHANGE_MEMBER_ROLE, change(ws, target, role), who.token),
        )
    else:
        vars_ = {"input": {"workspaceId": ws["id"], "userId": target.id}}
        await record(world, "removeMember", await post(api, REMOVE_MEMBER, vars_, who.token))
        add = {"input": {"workspaceId": ws["id"], "email": target.email, "role": "MEMBER"}}
        # An owner puts them back (an admin who removed them may no longer be one).
        await record(world, "addMember", await post(api, ADD_MEMBER, add, world.owners[0].token))


async def leave_once(api: Api, world: World, who: Account) -> None:
    ws = world.ws
    vars_ = {"input": {"workspaceId": ws["id"], "userId": who.id}}
    await record(world, "leave", await post(api, REMOVE_MEMBER, vars_, who.token))
    add = {"input": {"workspaceId": ws["id"], "email": who.email, "role": "MEMBER"}}
    await record(world, "readd", await post(api, ADD_MEMBER, add, world.owners[1].token))


def report(world: World) -> str:
    kinds = Counter((name, tuple(errors), status) for name, _, errors, status in world.failures)
    return (
        f"{len(world.failures)} failed requests: {kinds.most_common(10)}; outcomes {world.outcomes}"
    )


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_storm_of_single_field_writes_and_membership_changes(
    live_api: Api, seed: int
) -> None:
    """Six MEMBER/ADMIN users write everything they may (and what they may not) while both
    owners change their roles (MEMBER, VIEWER, ADMIN), remove and re-add them, admins change
    and remove members, and writers leave and come back. Every request must answer without a
    top-level error (no INTERNAL: no deadlock; no TIMEOUT: no lock wait past the statement
    timeout) and nothing may hang."""
    world = await build(live_api)
    rnd = random.Random(seed)

    async def writer(who: Account, r: random.Random) -> None:
        for _ in range(40):
            await write_once(live_api, world, who, r)

    async def changer(who: Account, r: random.Random) -> None:
        for _ in range(25):
            await change_once(live_api, world, who, r)

    async def leaver(who: Account) -> None:
        for _ in range(6):
            await leave_once(live_api, world, who)

    loops = [writer(w, random.Random(rnd.random())) for w in world.writers]
    loops += [writer(w, random.Random(rnd.random())) for w in world.writers[:3]]  # two at once
    loops += [changer(o, random.Random(rnd.random())) for o in world.owners]
    loops += [changer(world.writers[1], random.Random(rnd.random()))]  # an admin, at first
    loops += [leaver(world.writers[4])]
    async with asyncio.timeout(HANG * 4):
        await asyncio.gather(*loops)
    print(report(world))  # with -s: what the storm did
    assert world.failures == [], report(world)
    # Every membership survived as one row per user, and the owners are still there.
    final = await roles(live_api, world.owners[0], world.ws["slug"])
    assert final[world.owners[0].id] == "OWNER"


async def test_owners_demoting_each_other_at_once_while_both_write(live_api: Api) -> None:
    """Two owners make each other ADMIN at the same moment, many times, while each writes: the
    changes take turns, so exactly one lands (the last-owner rule or the loser's new role refuses
    the other), never a deadlock."""
    a = await live_api.register("a")
    b = await live_api.register("b")
    ws = await live_api.workspace(a)
    await live_api.add(a, ws["id"], b, "OWNER")
    proj = await project(live_api, a, ws["id"])
    t = (await task(live_api, a, proj["id"]))["id"]
    world = World(ws, [a, b], [], [proj], [t])
    for round_ in range(12):
        bodies = await asyncio.wait_for(
            asyncio.gather(
                post(live_api, CHANGE_MEMBER_ROLE, change(ws, b, "ADMIN"), a.token),
                post(live_api, CHANGE_MEMBER_ROLE, change(ws, a, "ADMIN"), b.token),
                post(live_api, CREATE_COMMENT, {"input": {"taskId": t, "body": "a"}}, a.token),
                post(live_api, CREATE_COMMENT, {"input": {"taskId": t, "body": "b"}}, b.token),
                post(live_api, UPDATE_TASK, {"input": {"id": t, "title": f"r{round_}"}}, a.token),
                post(live_api, UPDATE_TASK, {"input": {"id": t, "title": f"s{round_}"}}, b.token),
            ),
            HANG,
        )
        for name, body in zip(["a->b", "b->a", "ca", "cb", "ua", "ub"], bodies, strict=True):
            await record(world, name, body)
        landed = [field_errors(x) == [] for x in bodies[:2]]
        assert landed.count(True) == 1, bodies[:2]
        final = await roles(live_api, a if landed[0] else b, ws["slug"])
        assert sorted(final.values()) == ["ADMIN", "OWNER"], final
        # Both owners again for the next round.
        winner, loser = (a, b) if landed[0] else (b, a)
        await live_api.ok(CHANGE_MEMBER_ROLE, change(ws, loser, "OWNER"), winner.token)
    assert world.failures == [], report(world)


async def test_writers_and_membership_changes_over_a_real_pool_many_rounds(live_api: Api) -> None:
    """Rounds of: every writer writes twice at once, while an owner demotes one to VIEWER,
    removes another, promotes a third to ADMIN, and an admin demotes a member; then everything
    is set back. Rounds differ only in who is picked."""
    world = await build(live_api, writers=6)
    o = world.owners[0]
    ws = world.ws
    rnd = random.Random(7)
    for round_ in range(10):
        picked = rnd.sample(world.writers, 4)
        jobs: list[Any] = [
            write_once(live_api, world, w, rnd) for w in world.writers for _ in range(2)
        ]
        jobs += [
            recorded(
                world,
                "demote",
                (post(live_api, CHANGE_MEMBER_ROLE, change(ws, picked[0], "VIEWER"), o.token)),
            ),
            recorded(
                world,
                "remove",
                (
                    post(
                        live_api,
                        REMOVE_MEMBER,
                        {"input": {"workspaceId": ws["id"], "userId": picked[1].id}},
                        o.token,
                    )
                ),
            ),
            recorded(
                world,
                "promote",
                (post(live_api, CHANGE_MEMBER_ROLE, change(ws, picked[2], "ADMIN"), o.token)),
            ),
            recorded(
                world,
                "self-leave",
                (
                    post(
                        live_api,
                        REMOVE_MEMBER,
                        {"input": {"workspaceId": ws["id"], "userId": picked[3].id}},
                        picked[3].token,
                    )
                ),
            ),
        ]
        async with asyncio.timeout(HANG):
            await asyncio.gather(*jobs)
        current = await roles(live_api, o, ws["slug"])
        for w in world.writers:
            if w.id not in current:
                await live_api.ok(
                    ADD_MEMBER,
                    {"input": {"workspaceId": ws["id"], "email": w.email, "role": "MEMBER"}},
                    o.token,
                )
            else:
                await live_api.ok(
                    CHANGE_MEMBER_ROLE, change(ws, w, "MEMBER" if round_ % 2 else "ADMIN"), o.token
                )
    assert world.failures == [], report(world)


async def recorded(world: World, name: str, request: Any) -> dict[str, Any]:
    """A request and its recording, as one job."""
    return await record(world, name, await request)


async def test_no_write_starts_and_lands_after_its_authors_role_was_taken_away(
    live_api: Api,
) -> None:
    """Each member has a changer of its own that flips them MEMBER -> VIEWER -> removed -> re-added
    as MEMBER, over and over, while the member writes (updateTask, createComment, createLabel,
    createTask in its three modes) as fast as it can. From the client's clock alone: a write sent
    after a change that took the right to write away was answered, and before the next change
    was sent, must be refused. Any top-level error fails the test too."""
    owner = await live_api.register("owner")
    ws = await live_api.workspace(owner)
    proj = await project(live_api, owner, ws["id"])
    tasks_ = [(await task(live_api, owner, proj["id"]))["id"] for _ in range(3)]
    members = [await live_api.register(f"m{i}") for i in range(4)]
    for m in members:
        await live_api.add(owner, ws["id"], m, "MEMBER")
    world = World(ws, [owner], members, [proj], tasks_)
    loop = asyncio.get_running_loop()
    # Per member: (sent, answered, may write afterwards) of each change, in order.
    changes: dict[str, list[tuple[float, float, bool]]] = {m.id: [] for m in members}
    writes: list[tuple[str, float, str, bool]] = []  # (member, sent, kind, landed)
    stop = asyncio.Event()

    async def changer(m: Account, r: random.Random) -> None:
        steps = [
            (CHANGE_MEMBER_ROLE, change(ws, m, "VIEWER"), False),
            (CHANGE_MEMBER_ROLE, change(ws, m, "MEMBER"), True),
            (REMOVE_MEMBER, {"input": {"workspaceId": ws["id"], "userId": m.id}}, False),
            (
                ADD_MEMBER,
                {"input": {"workspaceId": ws["id"], "email": m.email, "role": "MEMBER"}},
                True,
            ),
        ]
        for i in range(24):
            query, variables, may_write = steps[i % len(steps)]
            sent = loop.time()
            body = await record(
                world, "change", await post(live_api, query, variables, owner.token)
            )
            assert field_errors(body) == [], body
            changes[m.id].append((sent, loop.time(), may_write))
            await asyncio.sleep(r.random() * 0.05)
        stop.set()

    async def writer(m: Account, r: random.Random) -> None:
        while not stop.is_set():
            kind = r.choice(
                ["updateTask", "createComment", "createLabel", "at hand", "read", "key"]
            )
            n = next(_names)
            headers = None
            if kind == "updateTask":
                query, variables = UPDATE_TASK, {"input": {"id": r.choice(tasks_), "title": f"{n}"}}
            elif kind == "createComment":
                query, variables = (
                    CREATE_COMMENT,
                    {"input": {"taskId": r.choice(tasks_), "body": "c"}},
                )
            elif kind == "createLabel":
                query = CREATE_LABEL
                variables = {
                    "input": {"workspaceId": ws["id"], "name": f"l{n}", "color": "#abcdef"}
                }
            else:
                query = CREATE_TASK_READ if kind == "read" else CREATE_TASK_AT_HAND
                variables = {"input": {"projectId": proj["id"], "title": f"n{n}"}}
                headers = {"idempotency-key": f"key-{n}"} if kind == "key" else None
            sent = loop.time()
            body = await record(
                world, kind, await post(live_api, query, variables, m.token, headers)
            )
            writes.append((m.id, sent, kind, not field_errors(body) and not top_errors(body)))

    rnd = random.Random(11)
    async with asyncio.timeout(HANG * 4):
        await asyncio.gather(
            *(changer(m, random.Random(rnd.random())) for m in members),
            *(writer(m, random.Random(rnd.random())) for m in members for _ in range(2)),
        )
    assert world.failures == [], report(world)
    late = []
    for member_id, sent, kind, landed in writes:
        history = changes[member_id]
        for i, (_, answered, may_write) in enumerate(history):
            next_sent = history[i + 1][0] if i + 1 < len(history) else float("inf")
            if not may_write and answered < sent < next_sent and landed:
                late.append(kind)
    print(report(world), Counter(late))  # with -s: what the storm did
    assert late == [], f"writes that landed after their author lost the right: {Counter(late)}"


def test_deadlocks_and_serialization_failures_are_conflicts_to_retry() -> None:
    """What the server tells a client whose operation PostgreSQL rolled back once it gave up
    running it again; and what it runs again (graphql_api/app.py)."""

    class DriverError(Exception):
        def __init__(self, sqlstate: str) -> None:
            self.sqlstate = sqlstate

    for sqlstate in ("40P01", "40001"):
        wrapped = sqlalchemy.exc.DBAPIError("UPDATE ...", {}, DriverError(sqlstate))
        assert is_retryable(wrapped)
        assert classify(wrapped) is CONFLICT
    other = sqlalchemy.exc.DBAPIError("UPDATE ...", {}, DriverError("23505"))
    assert not is_retryable(other) and classify(other) is None
