"""The committed SDL is the contract frontends build against: it must match the code."""

from __future__ import annotations

from graphql_api.schema import schema
from tests.conftest import ROOT


def test_schema_graphql_is_in_sync() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", (
        "schema.graphql differs from the code; run `graphql-api export-schema -o schema.graphql`"
    )
