"""The API guide's walkthroughs (docs/api.md), run as printed: every `sh` block, in order, in
one bash, with curl against the service as `make run` serves it, sending its email to an
SMTP server of the test's.

A few lines stand for what a reader takes from elsewhere: the server's address, a link from
an email, a code from an authenticator app. The test swaps exactly those lines, and fails
when one is no longer in the guide. Every request the walkthroughs send is recorded (its
method, path and status), and the whole sequence must be what a reader following the guide
sees.
"""

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support.processes import BIN, ROOT
from support.serving import environment, make_serve_command, server
from tests.factories.mail import body
from tests.smtp import SmtpServer

GUIDE = ROOT / "docs/api.md"

# A placeholder line of the guide, and what the reader would type there instead.
STAND_INS = {
    "BASE=http://127.0.0.1:8000": 'BASE="$SERVICE"',
    "TOKEN=the-token-from-the-link": "TOKEN=$(mailed_token reset-password)",
    "TOKEN=the-token-from-the-verification-link": "TOKEN=$(mailed_token verify-email)",
    # The code the app shows now, then its next one: each code is accepted once.
    "CODE=123456": 'CODE=$(totp_code "$SECRET" 0)',
    "CODE=654321": 'CODE=$(totp_code "$SECRET" 1)',
    "BACKUP_CODE=abcd-efgh-ijkl": "BACKUP_CODE=$(first_backup_code)",
    # A receiver on this machine (the server allows private targets): nothing need listen,
    # since the guide's round goes through the deliveries, not their success.
    "RECEIVER=https://erp.example.com/hooks/orders": 'RECEIVER="$SERVICE/hooks/orders"',
}

# Records each request as "STATUS METHOD URL" and keeps the last body for the helpers.
HELPERS = r"""
set -euo pipefail
curl() {
  command curl -sS -w '%{stderr}%{http_code} %{method} %{url_effective}\n' "$@" \
    2>>"$WALK_LOG" | tee "$WALK_DIR/last-body"
}
mailed_token() {
  local link
  for _ in $(seq 200); do
    link=$(grep -ho "/$1?token=[A-Za-z0-9_-]*" "$MAIL_DIR"/*.txt 2>/dev/null | tail -n 1) || true
    if [ -n "$link" ]; then echo "${link#*=}"; return; fi
    sleep 0.05
  done
  echo "no email with a /$1 link arrived" >&2
  return 1
}
totp_code() {
  python3 -c 'import json, sys
from app.domains.auth.totp import code_at, current_step
print(code_at(json.loads(sys.argv[1])["secret"], current_step() + int(sys.argv[2])))' "$1" "$2"
}
first_backup_code() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)["backup_codes"][0])' \
    <"$WALK_DIR/last-body"
}
"""

# What a reader following the guide sees, request by request.
EXPECTED = [
    # Accounts and authentication
    "201 POST /api/v1/users",
    "200 POST /api/v1/auth/token",
    "200 GET /api/v1/users/me",
    "200 POST /api/v1/auth/token",
    # Account lifecycle: a reset, signing in again, the verification, then the pages by hand
    # with the spent verification token
    "202 POST /api/v1/auth/password-reset",
    "204 POST /api/v1/auth/password-reset/confirm",
    "200 POST /api/v1/auth/token",
    "204 POST /api/v1/auth/verify-email",
    "400 GET /reset-password",
    "400 POST /reset-password",
    # API keys
    "201 POST /api/v1/users/me/api-keys",
    "200 GET /api/v1/orders",
    # Sessions
    "200 POST /api/v1/auth/token",
    "200 GET /api/v1/users/me/sessions",
    "200 GET /api/v1/users/me/sessions",
    "204 DELETE /api/v1/users/me/sessions/{id}",
    # Two-factor login
    "201 POST /api/v1/users/me/mfa/totp",
    "200 POST /api/v1/users/me/mfa/totp/confirm",
    "401 POST /api/v1/auth/token",
    "200 POST /api/v1/auth/token/mfa",
    "204 DELETE /api/v1/users/me/mfa/totp",
    # Export and erasure
    "200 GET /api/v1/users/me/export",
    "204 DELETE /api/v1/users/me",
    # Audit log
    "200 POST /api/v1/auth/token",
    "200 GET /api/v1/audit-events",
    # Catalog and posts
    "201 POST /api/v1/items",
    "201 POST /api/v1/items",
    "200 GET /api/v1/items/{id}",
    "200 GET /api/v1/items",
    "200 PATCH /api/v1/items/{id}",
    "201 POST /api/v1/posts",
    "200 GET /api/v1/posts",
    # Orders
    "201 POST /api/v1/orders",
    "200 GET /api/v1/orders/{id}",
    "200 POST /api/v1/orders/{id}/cancel",
    # Webhooks: the endpoint, then the operator's round (no delivery 42 here)
    "201 POST /api/v1/webhooks",
    "200 GET /api/v1/webhooks/{id}/deliveries",
    "200 GET /api/v1/webhooks/{id}/deliveries",
    "202 POST /api/v1/webhooks/{id}/ping",
    "404 POST /api/v1/webhooks/{id}/deliveries/{id}/redeliver",
    "200 GET /api/v1/webhooks/{id}",
    "200 PATCH /api/v1/webhooks/{id}",
    "200 POST /api/v1/webhooks/{id}/rotate-secret",
    # Cursor pagination
    "200 GET /api/v1/items",
    "200 GET /api/v1/items",
]


def administrator() -> tuple[str, str]:
    """The email and password the guide says the server was started with."""
    found = re.search(
        r"FIRST_ADMIN_EMAIL=(\S+) and\s*#\s*FIRST_ADMIN_PASSWORD=(\S+)", GUIDE.read_text()
    )
    assert found is not None, "docs/api.md no longer says how its administrator was made"
    return found.group(1), found.group(2)


def walkthrough() -> str:
    """The guide's `sh` blocks, in order, with the stand-ins swapped in."""
    text = GUIDE.read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```sh\n")[1:]]
    script = "\n".join(blocks)
    lines = script.splitlines()
    for placeholder, stand_in in STAND_INS.items():
        assert placeholder in lines, f"{placeholder!r} is no longer a line of docs/api.md"
        lines = [stand_in if line == placeholder else line for line in lines]
    return HELPERS + "\n".join(lines) + "\n"


def requests_sent(log: str) -> list[str]:
    """`STATUS METHOD PATH` per request, each id in a path (a number, a session's hex) as
    `{id}`."""
    sent = []
    for line in log.splitlines():
        status, method, url = line.split(" ", 2)
        parts = urlsplit(url).path.split("/")
        path = "/".join(
            "{id}" if re.fullmatch(r"\d+|[0-9a-f]{32}", part) else part for part in parts
        )
        sent.append(f"{status} {method} {path}")
    return sent


async def keep_mail(smtp: SmtpServer, folder: Path) -> None:
    """Each email's text, one file per message, where the shell's `mailed_token` reads it."""
    number = 0
    while True:
        received = await smtp.inbox.get()
        number += 1
        (folder / f"{number:04d}.txt").write_text(body(received.message))


async def test_the_walkthroughs_work_as_printed(tmp_path: Path, smtp: SmtpServer) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl (apt-get install curl)")
    mail, work = tmp_path / "mail", tmp_path / "walk"
    mail.mkdir()
    work.mkdir()
    admin_email, admin_password = administrator()
    settings = environment(
        tmp_path,
        FIRST_ADMIN_EMAIL=admin_email,
        FIRST_ADMIN_PASSWORD=admin_password,
        OUTBOX_ENABLED="true",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_USERNAME="mailer",
        SMTP_PASSWORD="mail-secret",
        SMTP_SECURITY="none",
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
    )
    migrated = await asyncio.create_subprocess_exec(
        str(BIN / "alembic"), "upgrade", "head", cwd=ROOT, env=settings
    )
    assert await migrated.wait() == 0
    keeper = asyncio.create_task(keep_mail(smtp, mail))
    try:
        with server(make_serve_command, settings) as served:
            shell = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                walkthrough(),
                cwd=work,
                env=settings
                | {
                    "SERVICE": f"http://{served.host}:{served.port}",
                    "WALK_LOG": str(tmp_path / "requests.log"),
                    "WALK_DIR": str(tmp_path),
                    "MAIL_DIR": str(mail),
                    "PYTHONPATH": str(ROOT),
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                },
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(120):
                out, err = await shell.communicate()
    finally:
        keeper.cancel()
    log = (tmp_path / "requests.log").read_text()
    assert shell.returncode == 0, (err.decode(), log, out.decode()[-2000:])
    assert requests_sent(log) == EXPECTED, log
    # The export was saved under the name the guide says.
    assert [path.name for path in work.glob("account-*-export.json")]
