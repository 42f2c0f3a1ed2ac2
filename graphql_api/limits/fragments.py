"""Each fragment's result computed once per walk of a document.

In `fragment F1 on Query {...F0 ...F0}`, `fragment F2 on Query {...F1 ...F1}`, ... a walker that
follows every spread reaches F0 2^n times: a document of a few hundred bytes then blocks a worker
for seconds. Every walker of ours (the document shape in rules.py, the node estimate in cost.py)
asks a `FragmentResults` for a spread instead, so its work is linear in the document's size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

from graphql import DocumentNode, FragmentDefinitionNode

T = TypeVar("T")

# Selection sets walked, by walker: what the tests count to show the work is linear (issue 12).
VISITS: Counter[str] = Counter()


def fragment_definitions(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


class FragmentResults(Generic[T]):
    """`compute(fragment)` for each fragment of a document, at most once each."""

    def __init__(
        self,
        document: DocumentNode,
        compute: Callable[[FragmentDefinitionNode], T],
        cyclic: T,
    ) -> None:
        self.definitions = fragment_definitions(document)
        self.compute = compute
        self.cyclic = cyclic
        self.done: dict[str, T] = {}
        self.active: set[str] = set()

    def get(self, name: str) -> T | None:
        """The fragment's result; None for an unknown fragment (a validation error)."""
        if name in self.done:
            return self.done[name]
        definition = self.definitions.get(name)
        if definition is None:
            return None
        if name in self.active:
            return self.cyclic  # a cycle, which NoFragmentCyclesRule reports
        self.active.add(name)
        try:
            result = self.done[name] = self.compute(definition)
        finally:
            self.active.discard(name)
        return result
