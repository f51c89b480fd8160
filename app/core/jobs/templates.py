"""Email bodies from the files in app/templates/email, a plain-text and an HTML part each.

`string.Template` keeps the templates logic-free: code computes every value, the files only
place them. Values are HTML-escaped in the HTML part, so a name such as `<b>Ada</b>` arrives
as text, never as markup.
"""

import html
from functools import lru_cache
from pathlib import Path
from string import Template

from app.core.jobs.email import EmailMessage

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "email"


@lru_cache(maxsize=64)
def _template(name: str, extension: str) -> Template:
    return Template((TEMPLATES_DIR / f"{name}.{extension}").read_text(encoding="utf-8"))


def render_email(template: str, *, to: str, subject: str, **values: object) -> EmailMessage:
    """The message built from `template`.txt and `template`.html; every `$name` the
    templates use must be given (a missing one is a KeyError, not a blank in a sent email)."""
    text = {name: str(value) for name, value in values.items()}
    escaped = {name: html.escape(value) for name, value in text.items()}
    return EmailMessage(
        to=to,
        subject=subject,
        text=_template(template, "txt").substitute(text),
        html=_template(template, "html").substitute(escaped),
    )
