"""GraphQL over HTTP: graphql-http's auditServer (the reference audit, from npm) against a live
server. Every MUST and every SHOULD audit passes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.servers import serving

CLIENTS = Path(__file__).resolve().parent / "clients"


def test_graphql_http_audit(fresh_database_url: str) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the GraphQL-over-HTTP audit"
    assert (CLIENTS / "node_modules" / "graphql-http").is_dir(), (
        "run `npm ci --prefix tests/clients` (make test does it)"
    )
    with serving(fresh_database_url) as host:
        assert httpx.get(f"http://{host}/readyz").status_code == 200
        audit = subprocess.run(
            [node, str(CLIENTS / "audit.mjs"), f"http://{host}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    results = json.loads(audit.stdout)
    assert len(results) > 50  # the audit really ran
    failed = [f"{r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"]
    assert failed == []
