"""Every model, so that `Base.metadata` is complete once this package is imported."""

from db.base import Base
from db.models.audit_event import AuditEvent
from db.models.comment import Comment
from db.models.enums import Role, TaskPriority, TaskStatus
from db.models.idempotency_key import IdempotencyKey
from db.models.label import Label
from db.models.login_throttle import LoginThrottle
from db.models.persisted_document import PersistedDocument
from db.models.project import Project
from db.models.project_task_count import ProjectTaskCount
from db.models.rate_limit import RateLimit
from db.models.refresh_token import RefreshToken
from db.models.task import Task, TaskLabel
from db.models.user import User
from db.models.workspace import Membership, Workspace

__all__ = [
    "AuditEvent",
    "Base",
    "Comment",
    "IdempotencyKey",
    "Label",
    "LoginThrottle",
    "Membership",
    "PersistedDocument",
    "Project",
    "ProjectTaskCount",
    "RateLimit",
    "RefreshToken",
    "Role",
    "Task",
    "TaskLabel",
    "TaskPriority",
    "TaskStatus",
    "User",
    "Workspace",
]
