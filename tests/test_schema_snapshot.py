"""The committed SDL is the contract frontends build against: it must match the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphql_api.schema import schema
from tests.conftest import ROOT


def test_schema_graphql_is_in_sync() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", (
        "schema.graphql differs from the code; run `graphql-api export-schema -o schema.graphql`"
    )


def test_schema_check_reports_breaking_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graphql_api.cli import main

    sdl = schema.as_str()
    assert main(["schema-check", "--against", str(ROOT / "schema.graphql")]) == 0
    # A client built against a schema that had one more field breaks when it goes away.
    older = tmp_path / "older.graphql"
    older.write_text(sdl.replace("type Query {", "type Query {\n  legacyField: String", 1))
    assert main(["schema-check", "--against", str(older)]) == 1
    out = capsys.readouterr().out
    assert "BREAKING  FIELD_REMOVED:" in out and "Query.legacyField was removed" in out
    # A new enum value in the code is not breaking, but dangerous for exhaustive clients.
    fewer_codes = tmp_path / "fewer-codes.graphql"
    fewer_codes.write_text(sdl.replace("  RATE_LIMITED\n", "", 1))
    assert main(["schema-check", "--against", str(fewer_codes)]) == 0
    assert "DANGEROUS VALUE_ADDED_TO_ENUM" in capsys.readouterr().out
