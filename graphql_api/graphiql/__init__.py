"""GraphiQL, served entirely by this server: the page, and its JavaScript and CSS shipped in
`static/` (pinned versions, licences in static/THIRD_PARTY_LICENSES.txt; `vendor/update.sh`
refreshes them). Nothing is loaded from another host, so it works offline and air-gapped, and
the page's Content-Security-Policy says so to the browser."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
ASSETS_PATH = "/graphiql"

# connect-src 'self' covers the page's own ws:// and wss:// (CSP level 3). Inline styles: GraphiQL
# and CodeMirror set element styles.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


@cache
def _html() -> str:
    return (HERE / "index.html").read_text().replace("{assets}", ASSETS_PATH)


def graphiql_page() -> HTMLResponse:
    return HTMLResponse(
        _html(),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def graphiql_assets() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")
