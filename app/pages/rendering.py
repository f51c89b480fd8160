"""Rendering a page: Jinja2 templates that escape everything they place, and the headers
every page carries."""

import base64
import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "pages"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
)
# The one stylesheet, inlined in every page and allowed by its hash alone. It is the
# project's own file, so it is marked safe to place unescaped.
_STYLE = Markup((TEMPLATES_DIR / "style.css").read_text(encoding="utf-8"))  # noqa: S704
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # The token is in the page's URL and form; no proxy may keep either.
    "Pragma": "no-cache",
}


def render_page(template: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _environment.get_template(f"{template}.html").render(style=_STYLE, **values)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
