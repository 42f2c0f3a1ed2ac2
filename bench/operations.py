"""The operations the benchmark drives: one GraphQL document each, the same answer written by
hand as one SQL statement for the limit endpoint, and what counts as a request's statement (for
the harness and the budget tests alike)."""

from __future__ import annotations

import hashlib
from typing import Any

from db.encodings import iso_sql
from db.ids import global_id_sql
from db.repositories.audit_events import AUDIT_ORDER

BOARD_PAGE = 50


def by_hash(body: dict[str, Any]) -> dict[str, Any]:
    """The same request as Apollo's persisted-queries link sends it once registered: the
    document's SHA-256 instead of the document."""
    sha = hashlib.sha256(body["query"].encode()).hexdigest()
    hashed = {k: v for k, v in body.items() if k != "query"}
    return {**hashed, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}


def own_statement(sql: str) -> bool:
    """A statement of the request's own: not savepoint bookkeeping, nor a rate-limit reservation
    (made once per chunk of points, a few times per client and window)."""
    if sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
        return False
    return "rate_limits" not in sql and "synchronous_commit" not in sql


Q1_BOARD = """
query Board($id: ID!) {
  node(id: $id) {
    ... on Project {
      tasks(first: 50) {
        nodes {
          identifier title status priority dueAt
          assignee { displayName }
          labels { name color }
          comments { totalCount }
        }
      }
    }
  }
}"""

# The README's board: by priority, with the column's size and whether more follow (issue 17:
# totalCount reads the task counters, hasNextPage one extra row, so neither grows with the project).
Q1C_BOARD_COUNTS = """
query BoardCounts($id: ID!) {
  node(id: $id) {
    ... on Project {
      tasks(first: 50, orderBy: {field: PRIORITY, direction: DESC}) {
        totalCount
        pageInfo { hasNextPage }
        nodes {
          identifier title status priority dueAt
          assignee { displayName }
          labels { name color }
          comments { totalCount }
        }
      }
    }
  }
}"""

Q2_TASK = """
query Task($id: ID!) {
  node(id: $id) {
    ... on Task {
      id identifier title description status priority dueAt version
      assignee { displayName }
      labels { name color }
    }
  }
}"""

Q3_DEEP = """
query Deep($slug: String!) {
  workspace(slug: $slug) {
    projects(first: 10) {
      nodes {
        key name
        tasks(first: 20) {
          nodes {
            identifier title
            comments(first: 3) { nodes { body author { displayName } } }
          }
        }
      }
    }
  }
}"""

# Issue 15's corpus: the reads that fell back to the resolvers (history, the audit log, nodes,
# @include/@skip), each also answered by the limit endpoint with one statement.
HISTORY_PAGE = AUDIT_PAGE = 20

Q4_HISTORY = """
query History($id: ID!) {
  node(id: $id) {
    ... on Task {
      history(first: 20) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id action entityType entityId at changes actor { displayName } }
      }
    }
  }
}"""

Q5_AUDIT_LOG = """
query AuditLog($slug: String!) {
  workspace(slug: $slug) {
    auditEvents(first: 20) {
      pageInfo { hasNextPage endCursor }
      nodes { id action entityType entityId at actor { displayName } }
    }
  }
}"""

Q6_NODES = """
query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    id
    ... on Task { identifier title status assignee { displayName } }
    ... on Project { key name }
  }
}"""

# Q1's board with directives, as a frontend toggles parts of a view.
Q7_BOARD_INCLUDE = """
query BoardInclude($id: ID!, $withLabels: Boolean!, $compact: Boolean!) {
  node(id: $id) {
    ... on Project {
      tasks(first: 50) {
        nodes {
          identifier title status priority
          dueAt @skip(if: $compact)
          assignee { displayName }
          labels @include(if: $withLabels) { name color }
          comments @skip(if: $compact) { totalCount }
        }
      }
    }
  }
}"""

M1_CREATE = """
mutation Create($input: CreateTaskInput!) {
  createTask(input: $input) { task { id identifier } userErrors { code message } }
}"""

# The limit endpoint's answers: the same JSON, built by PostgreSQL in one statement each.
_USER = "(SELECT json_build_object('displayName', u.display_name) FROM users u WHERE u.id = {col})"
_LABELS = (
    "coalesce((SELECT json_agg(json_build_object('name', l.name, 'color', l.color) ORDER BY l.name, l.id)"
    " FROM task_labels tl JOIN labels l ON l.id = tl.label_id"
    " WHERE tl.task_id = t.id AND l.deleted_at IS NULL), '[]')"
)


def limit_board(*, labels: bool = True, comments: bool = True, due: bool = True) -> str:
    """The board's statement (Q1); the fields that Q7's directives leave out, left out."""
    fields = [
        "'identifier', p.key || '-' || t.number, 'title', t.title, 'status', t.status",
        "'priority', t.priority",
        *(["'dueAt', t.due_at"] if due else []),
        f"'assignee', {_USER.format(col='t.assignee_id')}",
        *([f"'labels', {_LABELS}"] if labels else []),
        *(
            [
                "'comments', json_build_object('totalCount',\n"
                "      (SELECT count(*) FROM comments c WHERE c.task_id = t.id AND c.deleted_at IS NULL))"
            ]
            if comments
            else []
        ),
    ]
    return f"""
SELECT json_build_object('data', json_build_object('node', json_build_object('tasks',
  json_build_object('nodes', coalesce(json_agg(b.obj ORDER BY b.created_at, b.id), '[]')))))::text
FROM (
  SELECT t.created_at, t.id, json_build_object(
    {", ".join(fields)}) AS obj
  FROM tasks t JOIN projects p ON p.id = t.project_id
  WHERE t.project_id = $1 AND t.deleted_at IS NULL
  ORDER BY t.created_at, t.id LIMIT {BOARD_PAGE}
) b"""


LIMIT_Q1 = limit_board()

LIMIT_Q1C = f"""
SELECT json_build_object('data', json_build_object('node', json_build_object('tasks',
  json_build_object(
    'totalCount', (SELECT coalesce(sum(c.count), 0) FROM project_task_counts c
                   WHERE c.project_id = $1 AND NOT c.deleted),
    'pageInfo', json_build_object('hasNextPage', count(*) > {BOARD_PAGE}),
    'nodes', coalesce(json_agg(b.obj ORDER BY b.n) FILTER (WHERE b.n <= {BOARD_PAGE}), '[]')))))::text
FROM (
  SELECT row_number() OVER (ORDER BY t.priority DESC, t.id DESC) AS n, json_build_object(
    'identifier', p.key || '-' || t.number, 'title', t.title, 'status', t.status,
    'priority', t.priority, 'dueAt', t.due_at,
    'assignee', {_USER.format(col="t.assignee_id")},
    'labels', {_LABELS},
    'comments', json_build_object('totalCount',
      (SELECT count(*) FROM comments c WHERE c.task_id = t.id AND c.deleted_at IS NULL))) AS obj
  FROM tasks t JOIN projects p ON p.id = t.project_id
  WHERE t.project_id = $1 AND t.deleted_at IS NULL
  ORDER BY t.priority DESC, t.id DESC LIMIT {BOARD_PAGE + 1}
) b"""

LIMIT_Q2 = f"""
SELECT json_build_object('data', json_build_object('node', json_build_object(
  'id', $2::text, 'identifier', p.key || '-' || t.number, 'title', t.title,
  'description', t.description, 'status', t.status, 'priority', t.priority, 'dueAt', t.due_at,
  'version', t.version, 'assignee', {_USER.format(col="t.assignee_id")}, 'labels', {_LABELS})))::text
FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.id = $1"""

LIMIT_Q3 = f"""
SELECT json_build_object('data', json_build_object('workspace', json_build_object('projects',
  json_build_object('nodes', coalesce((
    SELECT json_agg(json_build_object('key', p.key, 'name', p.name, 'tasks', json_build_object('nodes',
      coalesce((SELECT json_agg(json_build_object('identifier', p.key || '-' || t.number, 'title', t.title,
        'comments', json_build_object('nodes', coalesce((
          SELECT json_agg(json_build_object('body', c.body, 'author', {_USER.format(col="c.author_id")})
                          ORDER BY c.created_at, c.id)
          FROM (SELECT * FROM comments c WHERE c.task_id = t.id AND c.deleted_at IS NULL
                ORDER BY c.created_at, c.id LIMIT 3) c), '[]'))) ORDER BY t.created_at, t.id)
        FROM (SELECT * FROM tasks t WHERE t.project_id = p.id AND t.deleted_at IS NULL
              ORDER BY t.created_at, t.id LIMIT 20) t), '[]'))) ORDER BY p.created_at, p.id)
    FROM (SELECT * FROM projects p WHERE p.workspace_id = w.id AND p.archived_at IS NULL
          ORDER BY p.created_at, p.id LIMIT 10) p), '[]')))))::text
FROM workspaces w WHERE w.slug = $1"""

LIMIT_M1 = """
WITH n AS (
  UPDATE projects SET task_counter = task_counter + 1 WHERE id = $1
  RETURNING id, workspace_id, key, task_counter
), t AS (
  INSERT INTO tasks (id, workspace_id, project_id, number, title, status, priority, created_by_id)
  SELECT $2, n.workspace_id, n.id, n.task_counter, $3, 'TODO', 'NONE', $4 FROM n
  RETURNING id
), l AS (
  INSERT INTO task_labels (task_id, label_id, workspace_id)
  SELECT $2, unnest($5::uuid[]), n.workspace_id FROM n
), a AS (
  INSERT INTO audit_events (id, workspace_id, actor_id, entity_type, entity_id, action, changes)
  SELECT $6, n.workspace_id, $4, 'Task', $2, 'task.create', '{}'::jsonb FROM n
)
SELECT json_build_object('data', json_build_object('createTask', json_build_object(
  'task', json_build_object('id', $7::text, 'identifier', n.key || '-' || n.task_counter),
  'userErrors', '[]'::json)))::text
FROM n"""


# Q4-Q7 check what a fair hand-written endpoint must check for the viewer ($viewer, the benchmark
# user, whom the limit endpoint takes as signed in): membership of the workspace, deleted tasks
# only for ADMIN and OWNER, the audit trail only for ADMIN and OWNER, and a referenced user only
# when they share a workspace with the viewer. Ids, timestamps and cursors are written in the
# API's own encodings (db/encodings.py, db/ids.py, the audit ordering's cursor).
_SEES_TASK = (
    "EXISTS (SELECT 1 FROM memberships m WHERE m.workspace_id = t.workspace_id"
    " AND m.user_id = {viewer} AND (t.deleted_at IS NULL OR m.role IN ('ADMIN', 'OWNER')))"
)
_VISIBLE_USER = (
    "(SELECT json_build_object('displayName', u.display_name) FROM users u WHERE u.id = {col}"
    " AND (u.id = {viewer} OR EXISTS (SELECT 1 FROM memberships mu JOIN memberships mv"
    " ON mv.workspace_id = mu.workspace_id WHERE mu.user_id = u.id AND mv.user_id = {viewer})))"
)
_ENTITY_ID = (
    "translate(encode(convert_to(e.entity_type || ':' || e.entity_id::text, 'UTF8'), 'base64'),"
    " '+/', '-_')"
)


def _audit_connection(where: str, page: int, viewer: str, *, changes: bool, total: bool) -> str:
    """An AuditEventConnection (newest first) of the events `where` selects, as one expression:
    the page of `page` and one more row, whether more follow, and the last row's cursor."""
    event = ", ".join(
        [
            f"'id', {global_id_sql('AuditEvent', 'e.id')}",
            "'action', e.action, 'entityType', e.entity_type",
            f"'entityId', {_ENTITY_ID}",
            f"'at', {iso_sql('e.created_at')}",
            *(["'changes', e.changes"] if changes else []),
            f"'actor', {_VISIBLE_USER.format(col='e.actor_id', viewer=viewer)}",
        ]
    )
    count = f"'totalCount', (SELECT count(*) FROM audit_events e WHERE {where}), " if total else ""
    return f"""(SELECT json_build_object({count}
    'pageInfo', json_build_object('hasNextPage', a.more, 'endCursor', {AUDIT_ORDER.cursor_sql("a")}),
    'nodes', a.nodes)
  FROM (
    SELECT count(*) > {page} AS more,
      coalesce(json_agg(json_build_object({event}) ORDER BY e.n) FILTER (WHERE e.n <= {page}), '[]') AS nodes,
      (array_agg(e.created_at ORDER BY e.n DESC) FILTER (WHERE e.n <= {page}))[1] AS created_at,
      (array_agg(e.id ORDER BY e.n DESC) FILTER (WHERE e.n <= {page}))[1] AS id
    FROM (
      SELECT e.*, row_number() OVER (ORDER BY e.created_at DESC, e.id DESC) AS n
      FROM audit_events e WHERE {where}
      ORDER BY e.created_at DESC, e.id DESC LIMIT {page + 1}
    ) e
  ) a)"""


# $1 the task, $2 the viewer.
LIMIT_Q4 = f"""
SELECT json_build_object('data', json_build_object('node', (
  SELECT json_build_object('history', {
    _audit_connection(
        "e.entity_id = t.id AND e.workspace_id = t.workspace_id",
        HISTORY_PAGE,
        "$2",
        changes=True,
        total=True,
    )
})
  FROM tasks t WHERE t.id = $1 AND {_SEES_TASK.format(viewer="$2")})))::text"""

# $1 the workspace's slug, $2 the viewer.
LIMIT_Q5 = f"""
SELECT json_build_object('data', json_build_object('workspace', (
  SELECT json_build_object('auditEvents', {
    _audit_connection("e.workspace_id = w.id", AUDIT_PAGE, "$2", changes=False, total=False)
})
  FROM workspaces w JOIN memberships m ON m.workspace_id = w.id AND m.user_id = $2
  WHERE w.slug = $1 AND m.role IN ('ADMIN', 'OWNER'))))::text"""

# $1 the ids' type names, $2 their uuids, $3 the ids as given, $4 the viewer.
LIMIT_Q6 = f"""
SELECT json_build_object('data', json_build_object('nodes', coalesce(json_agg(CASE i.kind
  WHEN 'Task' THEN (
    SELECT json_build_object('id', i.gid, 'identifier', p.key || '-' || t.number, 'title', t.title,
      'status', t.status, 'assignee', {_VISIBLE_USER.format(col="t.assignee_id", viewer="$4")})
    FROM tasks t JOIN projects p ON p.id = t.project_id
    WHERE t.id = i.id AND {_SEES_TASK.format(viewer="$4")})
  WHEN 'Project' THEN (
    SELECT json_build_object('id', i.gid, 'key', p.key, 'name', p.name)
    FROM projects p WHERE p.id = i.id AND EXISTS (
      SELECT 1 FROM memberships m WHERE m.workspace_id = p.workspace_id AND m.user_id = $4))
  END ORDER BY i.n), '[]')))::text
FROM unnest($1::text[], $2::uuid[], $3::text[]) WITH ORDINALITY AS i(kind, id, gid, n)"""

# Q7 by its variables ($withLabels, $compact): the board without what the directives drop.
LIMIT_Q7 = {
    (with_labels, compact): limit_board(labels=with_labels, comments=not compact, due=not compact)
    for with_labels in (False, True)
    for compact in (False, True)
}
