"""Mutation payloads and userErrors (graphql_api/resolvers/mutation.py runs the mutations)."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from db.errors import DomainError
from graphql_api.schema.types import Comment, Label, Membership, Project, Task, User, Workspace


@strawberry.enum(description="Stable codes of expected failures; clients branch on these.")
class UserErrorCode(enum.Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    CONFLICT = "CONFLICT"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    RATE_LIMITED = "RATE_LIMITED"


@strawberry.type(description="An expected failure: the mutation changed nothing.")
class UserError:
    code: UserErrorCode
    message: str
    field: list[str] | None = strawberry.field(
        default=None, description='Path to the input field at fault, e.g. ["input", "email"].'
    )

    @classmethod
    def from_domain(cls, exc: DomainError) -> UserError:
        return cls(code=UserErrorCode(exc.code), message=exc.message, field=exc.field)


@strawberry.type
class Payload:
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AuthPayload(Payload):
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the access token expires."
    )
    user: User | None = None


@strawberry.type
class LogoutPayload(Payload):
    success: bool = False


@strawberry.type
class CreateWorkspacePayload(Payload):
    workspace: Workspace | None = None


@strawberry.type
class AddMemberPayload(Payload):
    membership: Membership | None = None


@strawberry.type
class ChangeMemberRolePayload(Payload):
    membership: Membership | None = None


@strawberry.type
class RemoveMemberPayload(Payload):
    removed_user_id: strawberry.ID | None = None
    workspace: Workspace | None = None


@strawberry.type
class ProjectPayload(Payload):
    project: Project | None = None


@strawberry.type
class LabelPayload(Payload):
    label: Label | None = None


@strawberry.type
class DeleteLabelPayload(Payload):
    deleted_label_id: strawberry.ID | None = None


@strawberry.type
class TaskPayload(Payload):
    task: Task | None = None


@strawberry.type
class CommentPayload(Payload):
    comment: Comment | None = None


@strawberry.type
class DeleteCommentPayload(Payload):
    deleted_comment_id: strawberry.ID | None = None


# One payload type per mutation, so each can grow on its own without breaking the others.
@strawberry.type
class CreateProjectPayload(ProjectPayload):
    pass


@strawberry.type
class UpdateProjectPayload(ProjectPayload):
    pass


@strawberry.type
class ArchiveProjectPayload(ProjectPayload):
    pass


@strawberry.type
class UnarchiveProjectPayload(ProjectPayload):
    pass


@strawberry.type
class CreateLabelPayload(LabelPayload):
    pass


@strawberry.type
class UpdateLabelPayload(LabelPayload):
    pass


@strawberry.type
class CreateTaskPayload(TaskPayload):
    pass


@strawberry.type
class UpdateTaskPayload(TaskPayload):
    pass


@strawberry.type
class DeleteTaskPayload(TaskPayload):
    pass


@strawberry.type
class RestoreTaskPayload(TaskPayload):
    pass


@strawberry.type
class CreateCommentPayload(CommentPayload):
    pass


@strawberry.type
class UpdateCommentPayload(CommentPayload):
    pass
