"""An in-process SMTP server (aiosmtpd) on the test's event loop, recording what it receives."""

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpServer:
    port: int
    username: str
    password: str
    inbox: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)

    async def next_message(self) -> Received:
        # A safety net so a broken delivery fails the test instead of hanging it.
        async with asyncio.timeout(10):
            return await self.inbox.get()


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _smtp: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.server.inbox.put_nowait(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, login)
        )
        return "250 Message accepted for delivery"


@asynccontextmanager
async def smtp_server(*, username: str, password: str) -> AsyncIterator[SmtpServer]:
    def authenticate(
        _smtp: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        valid = isinstance(data, LoginPassword) and data == LoginPassword(
            username.encode(), password.encode()
        )
        return AuthResult(success=valid, handled=False, auth_data=data if valid else None)

    loop = asyncio.get_running_loop()
    recorder = SmtpServer(port=0, username=username, password=password)
    handler = _Handler(recorder)
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="mail.test",
            authenticator=authenticate,
            # Plain-text AUTH is fine on loopback and lets the test check the credentials.
            auth_require_tls=False,
            loop=loop,
        ),
        "127.0.0.1",
        0,
    )
    recorder.port = server.sockets[0].getsockname()[1]
    try:
        yield recorder
    finally:
        server.close()
        await server.wait_closed()
