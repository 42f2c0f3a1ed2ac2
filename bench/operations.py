"""The operations the benchmark drives: one GraphQL document each, the same answer written by
hand as one SQL statement for the limit endpoint, and what counts as a request's statement (for
the harness and the budget tests alike)."""

from __future__ import annotations

import hashlib
from typing import Any

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

LIMIT_Q1 = f"""
SELECT json_build_object('data', json_build_object('node', json_build_object('tasks',
  json_build_object('nodes', coalesce(json_agg(b.obj ORDER BY b.created_at, b.id), '[]')))))::text
FROM (
  SELECT t.created_at, t.id, json_build_object(
    'identifier', p.key || '-' || t.number, 'title', t.title, 'status', t.status,
    'priority', t.priority, 'dueAt', t.due_at,
    'assignee', {_USER.format(col="t.assignee_id")},
    'labels', {_LABELS},
    'comments', json_build_object('totalCount',
      (SELECT count(*) FROM comments c WHERE c.task_id = t.id AND c.deleted_at IS NULL))) AS obj
  FROM tasks t JOIN projects p ON p.id = t.project_id
  WHERE t.project_id = $1 AND t.deleted_at IS NULL
  ORDER BY t.created_at, t.id LIMIT {BOARD_PAGE}
) b"""

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
