"""Swagger UI and ReDoc served with the project's own copies of their assets.

FastAPI's default pages load their scripts from a CDN; these pages work offline and under
a Content-Security-Policy that allows only this origin plus the pages' own inline scripts,
named by their hashes. The vendored files and their versions are listed in
app/static/docs/README.md.
"""

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).resolve().parents[2] / "static" / "docs"
ASSETS_URL = "/static/docs"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def docs_content_security_policy(html: str) -> str:
    """A policy for one docs page: this origin's assets and exactly its inline scripts."""
    scripts = " ".join(["'self'", *(_script_hash(s) for s in _INLINE_SCRIPT.findall(html))])
    return (
        f"default-src 'none'; script-src {scripts}; "
        # Both UIs set inline styles from script; ReDoc runs its search in a blob: worker.
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    page.headers["Content-Security-Policy"] = docs_content_security_policy(html)
    return page


def install_docs(app: FastAPI, *, openapi_url: str) -> None:
    """Serve /docs, /redoc and their assets; Swagger UI's Authorize button persists tokens."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def prefix(request: Request) -> str:
        root_path: str = request.scope.get("root_path", "")
        return root_path.rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    async def swagger_ui_redirect(_: Request) -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return _with_policy(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
                with_google_fonts=False,
            )
        )

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
