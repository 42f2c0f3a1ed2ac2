"""One repository per aggregate, over the generic base."""

from db.repositories.audit_events import AuditEventRepository
from db.repositories.base import Repository
from db.repositories.comments import CommentRepository
from db.repositories.idempotency_keys import IdempotencyKeyRepository, StoredOutcome
from db.repositories.keyset import KeysetOrder, Page, PageArgs, SortKey
from db.repositories.labels import LabelRepository
from db.repositories.projects import ProjectRepository
from db.repositories.refresh_tokens import RefreshTokenRepository
from db.repositories.tasks import TaskRepository
from db.repositories.users import UserRepository
from db.repositories.workspaces import MembershipRepository, WorkspaceRepository

__all__ = [
    "AuditEventRepository",
    "CommentRepository",
    "IdempotencyKeyRepository",
    "KeysetOrder",
    "LabelRepository",
    "MembershipRepository",
    "Page",
    "PageArgs",
    "ProjectRepository",
    "RefreshTokenRepository",
    "Repository",
    "SortKey",
    "StoredOutcome",
    "TaskRepository",
    "UserRepository",
    "WorkspaceRepository",
]
