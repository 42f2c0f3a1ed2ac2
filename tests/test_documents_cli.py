"""`graphql-api documents import`: a manifest is checked against the schema and its limits
before anything is stored; one document that would be refused fails the deploy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import fetch, run

GOOD = {
    # graphql-codegen's client preset: {"<hash>": "<document>"}
    "5b0b1c3e0f1a": "query Me { viewer { displayName } }",
    "7d1e": "query Board($id: ID!) { node(id: $id) { ... on Project { key } } }",
}


def write(tmp_path: Path, manifest: object) -> Path:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps(manifest))
    return path


def test_import_stores_trusted_documents(
    fresh_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    code, out, err = run(capsys, "documents", "import", str(write(tmp_path, GOOD)))
    assert (code, err) == (0, "")
    assert "imported 2 trusted document(s)" in out
    # Importing again (the next deploy) is harmless; Apollo's manifest format works too.
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": "7d1e", "name": "Board", "type": "query", "body": GOOD["7d1e"]}],
    }
    assert run(capsys, "documents", "import", str(write(tmp_path, apollo)))[0] == 0
    rows = fetch(fresh_database_url, "SELECT id, document, trusted FROM persisted_documents")
    assert {(r["id"], r["document"], r["trusted"]) for r in rows} == {
        (i, d, True) for i, d in GOOD.items()
    }


def test_a_manifest_that_no_longer_validates_fails_and_imports_nothing(
    fresh_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("MAX_QUERY_DEPTH", "3")
    manifest = {
        **GOOD,
        "removed-field": "query Old { viewer { nickname } }",
        "too-deep": "{ workspaces { nodes { projects { nodes { tasks { totalCount } } } } } }",
        "broken": "query {",
    }
    code, _, err = run(capsys, "documents", "import", str(write(tmp_path, manifest)))
    assert code == 1
    assert "removed-field: Cannot query field 'nickname' on type 'User'." in err
    assert "too-deep: the query is 6 levels deep; the limit is 3" in err
    assert "broken: Syntax Error" in err
    assert "3 of 5 document(s)" in err and "nothing imported" in err
    assert fetch(fresh_database_url, "SELECT id FROM persisted_documents") == []
    code, _, err = run(capsys, "documents", "import", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err
