"""GraphQL over HTTP: graphql-http's auditServer (the reference audit, from npm) against a live
server. Every MUST and every SHOULD audit passes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.test_startup import free_port

COMPLIANCE = Path(__file__).resolve().parent / "compliance"


def test_graphql_http_audit(fresh_database_url: str) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the GraphQL-over-HTTP audit"
    assert (COMPLIANCE / "node_modules" / "graphql-http").is_dir(), (
        "run `npm ci --prefix tests/compliance` (make test does it)"
    )
    port = free_port()
    env = {**os.environ, "DATABASE_URL": fresh_database_url, "LOG_LEVEL": "info"}
    server = subprocess.Popen(
        [sys.executable, "-m", "graphql_api", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:  # wait for the server's own word that it is up
            if "Application startup complete" in line:
                break
        else:
            raise AssertionError("the server did not start")
        # Keep draining its log, so that a full pipe can never stall it.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        audit = subprocess.run(
            [node, str(COMPLIANCE / "audit.mjs"), f"http://127.0.0.1:{port}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    results = json.loads(audit.stdout)
    assert len(results) > 50  # the audit really ran
    failed = [f"{r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"]
    assert failed == []
