"""Shared execution of task events: the hub executes a subscription's selection set once per
event for every subscriber that would get the same result, and each gets the same serialized
`next` payload (only the graphql-transport-ws message id differs, see events/ws.py).

The subscribers of a group must be indistinguishable to the selection: the same document,
operation, variables and cost, and a viewer-dependent part that `SharedExecution.group_key`
decides per event (the task's visibility for the subscriber's role, or the subscriber's user
when the selection, or the event, could depend on who is looking).

Two context variables carry what strawberry knows but a resolver is not handed: the
graphql-core executor of the subscription operation (set by the execution context,
events/execution_context.py, when it resolves the subscription's root field) and how to send a
pre-serialized `next` for the operation (set by the graphql-transport-ws handler for the
operation's task).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from graphql_api.events.loader import Delivery, LoadedEvent

# Sends `next` messages whose payloads are the given JSON texts, for the operation whose task
# this is; unset where the transport cannot (the legacy graphql-ws protocol, schema.subscribe).
NEXT_SENDER: ContextVar[Callable[[list[bytes]], Awaitable[None]] | None] = ContextVar(
    "graphql_next_sender", default=None
)
# The graphql-core executor of the subscription operation being started.
SUBSCRIPTION_EXECUTOR: ContextVar[Any] = ContextVar("graphql_subscription_executor", default=None)


class Payload(NamedTuple):
    json: bytes  # the `next` message's payload
    personal: bool  # it carries something of its subscriber's own (errors with a request id)


class SharedExecution(Protocol):
    """One subscription's way of turning a delivery into its `next` payload."""

    @property
    def cohort_key(self) -> Hashable:
        """Subscribers with the same role and cohort key have the same group_key for every
        event whose named users are all members of its workspace (names_only_members)."""

    def group_key(self, delivery: Delivery, loaded: LoadedEvent) -> Hashable:
        """Equal keys: the same payload for this event."""

    def projected(self, delivery: Delivery) -> Payload | None:
        """The payload written without executing anything, when it can be (never one with
        errors); None: `payload` executes it."""

    async def payload(self, delivery: Delivery) -> Payload:
        """The `next` payload of this event for this subscription."""
