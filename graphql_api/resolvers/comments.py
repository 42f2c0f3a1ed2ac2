"""createComment, updateComment (author only), deleteComment (author, or ADMIN and above)."""

from __future__ import annotations

import strawberry

from db.errors import Forbidden, NotFound
from db.models import Comment as CommentModel
from db.repositories import CommentRepository
from graphql_api import audit, policy, validation
from graphql_api.context import Context
from graphql_api.resolvers.common import (
    apply,
    authorize,
    check_version,
    find,
    save_version,
    task_of_comment,
)
from graphql_api.resolvers.mutation import mutation
from graphql_api.schema.core_inputs import (
    CreateCommentInput,
    DeleteCommentInput,
    UpdateCommentInput,
)
from graphql_api.schema.payloads import (
    CreateCommentPayload,
    DeleteCommentPayload,
    UpdateCommentPayload,
)
from graphql_api.schema.relay import to_global_id
from graphql_api.schema.types import Comment

MAX_BODY = 10_000


async def _live_comment(ctx: Context, global_id: str) -> CommentModel:
    """A comment to edit or delete. Comments follow their task: one of a task the viewer cannot
    see does not exist for them, and one of a deleted task is frozen until the task is restored."""
    field = ["input", "id"]
    comment: CommentModel = await find(ctx, ctx.loaders.comments, global_id, "Comment", field)
    task = await task_of_comment(ctx, comment)
    if task is None:
        raise NotFound("no Comment with this id", field=field)
    if task.deleted_at is not None:
        raise NotFound("the task of this comment is deleted; restore it first", field=field)
    return comment


def _body(value: str) -> str:
    return validation.text(value, ["input", "body"], max_length=MAX_BODY, what="a comment")


@mutation(CreateCommentPayload)
async def create_comment(info: strawberry.Info, input: CreateCommentInput) -> CreateCommentPayload:
    ctx: Context = info.context
    task = await find(ctx, ctx.loaders.tasks, input.task_id, "Task", ["input", "taskId"])
    if task.deleted_at is not None:
        raise NotFound("this task is deleted", field=["input", "taskId"])
    await authorize(ctx, task.workspace_id, policy.Action.WRITE_COMMENTS)
    body = _body(input.body)
    comment = await CommentRepository(ctx.db).add(
        CommentModel(
            workspace_id=task.workspace_id, task_id=task.id, author_id=ctx.viewer_id, body=body
        )
    )
    await audit.record(
        ctx,
        "comment.create",
        "Comment",
        comment.id,
        workspace_id=task.workspace_id,
        changes={"taskId": [None, to_global_id("Task", task.id)], "body": [None, body]},
    )
    return CreateCommentPayload(comment=Comment.from_model(comment))


@mutation(UpdateCommentPayload)
async def update_comment(info: strawberry.Info, input: UpdateCommentInput) -> UpdateCommentPayload:
    ctx: Context = info.context
    comment = await _live_comment(ctx, input.id)
    await authorize(ctx, comment.workspace_id, policy.Action.WRITE_COMMENTS)
    if comment.author_id != ctx.viewer_id:
        raise Forbidden("only the author can edit a comment")
    check_version(comment, input.expected_version, ["input", "expectedVersion"])
    changes = apply(comment, {"body": _body(input.body)})
    if changes:
        await save_version(CommentRepository(ctx.db), comment, input.expected_version)
        await audit.record(
            ctx,
            "comment.update",
            "Comment",
            comment.id,
            workspace_id=comment.workspace_id,
            changes=changes,
        )
    return UpdateCommentPayload(comment=Comment.from_model(comment))


@mutation(DeleteCommentPayload)
async def delete_comment(info: strawberry.Info, input: DeleteCommentInput) -> DeleteCommentPayload:
    ctx: Context = info.context
    comment = await _live_comment(ctx, input.id)
    role = await authorize(ctx, comment.workspace_id, policy.Action.WRITE_COMMENTS)
    if comment.author_id != ctx.viewer_id:
        policy.require(role, policy.Action.MODERATE_COMMENTS)
    await CommentRepository(ctx.db).delete(comment)
    await audit.record(
        ctx,
        "comment.delete",
        "Comment",
        comment.id,
        workspace_id=comment.workspace_id,
        changes={"body": [comment.body, None]},
    )
    return DeleteCommentPayload(deleted_comment_id=to_global_id("Comment", comment.id))
