"""`graphql-api seed --demo`: one small, deterministic workspace that makes GraphiQL come alive.

Ids are derived from names (UUIDv5), dates from a fixed day, choices from a seeded random
generator: every run on every machine produces the same data.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    AuditEvent,
    Comment,
    Label,
    Membership,
    Project,
    Role,
    Task,
    TaskLabel,
    TaskPriority,
    TaskStatus,
    User,
    Workspace,
)
from db.repositories import WorkspaceRepository
from db.session import DbSession
from graphql_api.auth.passwords import hash_password

DEMO_PASSWORD = "demo-password"
DEMO_SLUG = "acme"
_NS = uuid.UUID("6f1c1a52-3f0e-4d53-9b0a-6d9c1c7e0001")
_DAY0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

USERS = [
    ("alice@example.com", "Alice Archer", Role.OWNER),
    ("bob@example.com", "Bob Baker", Role.ADMIN),
    ("carol@example.com", "Carol Chen", Role.MEMBER),
    ("dave@example.com", "Dave Diaz", Role.VIEWER),
]
LABELS = [("bug", "#D73A4A"), ("feature", "#0E8A16"), ("design", "#C5DEF5"), ("docs", "#0075CA")]
PROJECTS = [
    ("WEB", "Website", "The marketing site and the web app shell.", False),
    ("API", "Public API", "The GraphQL API that our apps and customers use.", False),
    ("OPS", "Operations", "Last year's infrastructure work.", True),
]
TITLES = [
    "Fix login redirect loop on Safari",
    "Add dark mode to the settings page",
    "Paginate the activity feed",
    "Write onboarding docs for new members",
    "Cache avatar images at the edge",
    "Show due dates on the board cards",
    "Rate-limit password reset emails",
    "Search tasks by label and assignee",
    "Keyboard shortcuts for the task page",
    "Export a project as CSV",
    "Upgrade PostgreSQL to 18",
    "Remove the legacy REST endpoints",
]
COMMENTS = [
    "I can reproduce this on my machine.",
    "Picked this up; a draft PR is coming today.",
    "Does this need a design review first?",
    "Looks good to me, merging.",
    "Blocked on the API change, see the linked task.",
]


def _id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NS, ":".join(parts))


async def seed_demo(session: AsyncSession) -> bool:
    """Create the demo workspace; False when it exists already (nothing is changed then)."""
    if await WorkspaceRepository(DbSession(session)).get_by_slug(DEMO_SLUG) is not None:
        return False
    rng = random.Random(42)
    password_hash = hash_password(DEMO_PASSWORD)
    ws = Workspace(id=_id("workspace"), name="Acme Inc", slug=DEMO_SLUG, created_at=_DAY0)
    users = [
        User(id=_id("user", email), email=email, display_name=name, password_hash=password_hash)
        for email, name, _ in USERS
    ]
    session.add_all([ws, *users])
    await session.flush()
    session.add_all(
        Membership(workspace_id=ws.id, user_id=u.id, role=role, created_at=_DAY0)
        for u, (_, _, role) in zip(users, USERS, strict=True)
    )
    labels = [
        Label(id=_id("label", name), workspace_id=ws.id, name=name, color=color)
        for name, color in LABELS
    ]
    session.add_all(labels)
    statuses = list(TaskStatus)
    priorities = list(TaskPriority)
    for p_index, (key, name, description, archived) in enumerate(PROJECTS):
        project = Project(
            id=_id("project", key),
            workspace_id=ws.id,
            key=key,
            name=name,
            description=description,
            archived_at=_DAY0 if archived else None,
            created_at=_DAY0 + timedelta(hours=p_index),
            task_counter=len(TITLES),
        )
        session.add(project)
        await session.flush()
        for number, title in enumerate(TITLES, start=1):
            created = _DAY0 + timedelta(days=p_index, hours=number)
            assignee = users[(number + p_index) % 3] if number % 5 else None
            task = Task(
                id=_id("task", key, str(number)),
                workspace_id=ws.id,
                project_id=project.id,
                number=number,
                title=title,
                description=f"{title}. Details for {key}-{number}." if number % 3 else None,
                status=statuses[(number + p_index) % len(statuses)],
                priority=rng.choice(priorities),
                assignee_id=assignee.id if assignee else None,
                created_by_id=users[number % 3].id,
                due_at=created + timedelta(days=rng.randint(3, 30)) if number % 4 else None,
                created_at=created,
                updated_at=created,
            )
            session.add(task)
            session.add(
                AuditEvent(
                    id=_id("audit", key, str(number)),
                    workspace_id=ws.id,
                    actor_id=task.created_by_id,
                    entity_type="Task",
                    entity_id=task.id,
                    action="task.create",
                    changes={"title": [None, title]},
                    created_at=created,
                )
            )
            await session.flush()
            for label in rng.sample(labels, rng.randint(0, 2)):
                session.add(TaskLabel(task_id=task.id, label_id=label.id, workspace_id=ws.id))
            for c in range(rng.randint(0, 3)):
                session.add(
                    Comment(
                        id=_id("comment", key, str(number), str(c)),
                        workspace_id=ws.id,
                        task_id=task.id,
                        author_id=rng.choice(users[:3]).id,
                        body=rng.choice(COMMENTS),
                        created_at=created + timedelta(hours=c + 1),
                        updated_at=created + timedelta(hours=c + 1),
                    )
                )
    await session.flush()
    return True
