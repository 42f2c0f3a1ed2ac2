"""Who may do what: the one place that decides, from the viewer's role in a workspace.

VIEWER reads; MEMBER also writes tasks, comments and labels; ADMIN also sees and restores
deleted tasks, manages projects and members; OWNER also manages admins and the workspace.
Outside the viewer's workspaces nothing exists: callers turn "no role" into NOT_FOUND, never
FORBIDDEN.
"""

from __future__ import annotations

import enum

from db.errors import Forbidden, NotFound
from db.models import Role

RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Action(enum.Enum):
    READ = "read"
    WRITE_TASKS = "write tasks"
    WRITE_COMMENTS = "write comments"
    WRITE_LABELS = "write labels"
    MODERATE_COMMENTS = "delete other people's comments"
    READ_DELETED = "see deleted tasks"
    RESTORE_TASKS = "restore deleted tasks"
    MANAGE_PROJECTS = "manage projects"
    MANAGE_MEMBERS = "manage members and viewers"
    READ_AUDIT = "read the audit trail"
    MANAGE_ADMINS = "manage admins and owners"
    MANAGE_WORKSPACE = "manage the workspace"


MINIMUM_ROLE: dict[Action, Role] = {
    Action.READ: Role.VIEWER,
    Action.WRITE_TASKS: Role.MEMBER,
    Action.WRITE_COMMENTS: Role.MEMBER,
    Action.WRITE_LABELS: Role.MEMBER,
    Action.MODERATE_COMMENTS: Role.ADMIN,
    Action.READ_DELETED: Role.ADMIN,
    Action.RESTORE_TASKS: Role.ADMIN,
    Action.MANAGE_PROJECTS: Role.ADMIN,
    Action.MANAGE_MEMBERS: Role.ADMIN,
    Action.READ_AUDIT: Role.ADMIN,
    Action.MANAGE_ADMINS: Role.OWNER,
    Action.MANAGE_WORKSPACE: Role.OWNER,
}


def can(role: Role | None, action: Action) -> bool:
    return role is not None and RANK[role] >= RANK[MINIMUM_ROLE[action]]


def roles_allowed(action: Action) -> list[Role]:
    """The roles that may do `action`, for SQL that checks a role (the fast path)."""
    return [role for role in RANK if can(role, action)]


def sees_task(role: Role | None, deleted: bool) -> bool:
    """Who sees a task, and (comments follow their task) its comments: every member a live
    one, only roles allowed READ_DELETED a deleted one. The one definition: node/nodes, the
    comment mutations, restoreTask and subscriptions ask it; its SQL twin is
    TaskRepository.visible_in, given roles_allowed(READ_DELETED)."""
    return can(role, Action.READ) and (not deleted or can(role, Action.READ_DELETED))


def require(role: Role | None, action: Action, *, entity: str = "workspace") -> Role:
    """The role, when it allows `action`; NotFound when there is none (existence never leaks)."""
    if role is None:
        raise NotFound(f"{entity} not found")
    if not can(role, action):
        raise Forbidden(f"your role ({role.value}) does not allow you to {action.value}")
    return role


def membership_action(*roles: Role) -> Action:
    """Granting, changing or removing a role: admins and owners are managed by owners only."""
    if any(RANK[r] >= RANK[Role.ADMIN] for r in roles):
        return Action.MANAGE_ADMINS
    return Action.MANAGE_MEMBERS
