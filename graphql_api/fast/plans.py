"""Compiled plans, cached: shared by the executor extension that makes them and the HTTP front
that answers from them."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

import orjson

PLAN_CACHE_SIZE = 1024

# Set for a request whose cached plan a role check refused (SQLSTATE GQ403) in the HTTP front:
# the executor it hands the request to lets the resolvers answer at once, rather than running
# the same statement to the same refusal again.
PLAN_REFUSED: ContextVar[bool] = ContextVar("plan_refused", default=False)

# SQL, its parameters, and what the operation costs (graphql_api.limits.extension.Cost).
Plan = tuple[str, list[Any], Any]
V = TypeVar("V")


class PlanCache(Generic[V]):
    """Compiled statements by (document, operation, variables, viewer): the SQL text depends
    only on the structure, so PostgreSQL's prepared statements are reused across variables;
    the values are bound per request. A miss that cannot compile is remembered too (None).
    The `size` most recently used entries are kept (mutation payloads' plans use it too)."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        self.entries: OrderedDict[Any, V | None] = OrderedDict()

    def get(self, key: Any) -> V | bool | None:
        """The entry; False when there is none."""
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        return False

    def put(self, key: Any, plan: V | None) -> None:
        self.entries[key] = plan
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


PLANS: PlanCache[Plan] = PlanCache()


def plan_key(query: Any, operation: Any, variables: Any, viewer: uuid.UUID | None) -> Any:
    """What a compiled plan depends on. The viewer is part of it: the statement's parameters
    carry the viewer's id (their workspaces are the authorization boundary)."""
    if not isinstance(query, str) or not (operation is None or isinstance(operation, str)):
        return None
    try:
        encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    return (query, operation, encoded, viewer)
