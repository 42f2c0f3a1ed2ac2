"""Enumerations stored as native PostgreSQL enums; their declaration order is their sort order."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


class Role(enum.Enum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"


class TaskStatus(enum.Enum):
    BACKLOG = "BACKLOG"
    TODO = "TODO"
    IN_PROGRESS = "IN_PROGRESS"
    IN_REVIEW = "IN_REVIEW"
    DONE = "DONE"
    CANCELED = "CANCELED"


class TaskPriority(enum.Enum):
    NONE = "NONE"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


role_type = Enum(Role, name="role")
task_status_type = Enum(TaskStatus, name="task_status")
task_priority_type = Enum(TaskPriority, name="task_priority")
