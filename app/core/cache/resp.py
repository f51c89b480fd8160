"""A minimal RESP3 connection: what the near cache's invalidation channel needs and no more.

redis-py's clients pool their connections and hide the push frames Redis interleaves with
replies; the channel needs one connection of its own, its replies in order with the pushes
(that order is what makes a PONG prove every earlier invalidation has arrived), and a frame
at a time. The parser reads the RESP3 types Redis sends to such a connection: simple strings,
errors, integers, bulk strings, nulls, booleans, doubles, arrays, sets, maps and pushes.
"""

import asyncio
import contextlib
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit


class RespError(Exception):
    """An error reply from Redis."""


class Push(list[Any]):
    """An out-of-band frame (`>`): an invalidation, as opposed to a reply."""


class RespConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str, *, connect_timeout: float) -> "RespConnection":
        """Connect to the Redis of `url` (redis:// or rediss://) and switch to RESP3."""
        parts = urlsplit(url)
        context = ssl.create_default_context() if parts.scheme == "rediss" else None
        async with asyncio.timeout(connect_timeout):
            reader, writer = await asyncio.open_connection(
                parts.hostname or "localhost", parts.port or 6379, ssl=context
            )
            connection = cls(reader, writer)
            hello: list[str] = ["HELLO", "3"]
            if parts.password is not None:
                username = unquote(parts.username) if parts.username else "default"
                hello += ["AUTH", username, unquote(parts.password)]
            connection.send(*hello)
            try:
                await connection.reply()
            except BaseException:
                # Refused, timed out or cancelled (the app stopping): nobody else holds it.
                writer.close()
                raise
        return connection

    def send(self, *arguments: str) -> None:
        """Queue one command (written by the transport as soon as it can)."""
        encoded = [argument.encode() for argument in arguments]
        frame = [b"*%d\r\n" % len(encoded)]
        for argument in encoded:
            frame.append(b"$%d\r\n%s\r\n" % (len(argument), argument))
        self.writer.write(b"".join(frame))

    async def reply(self) -> Any:
        """The next frame that is not a push (pushes before it are dropped)."""
        while isinstance(frame := await self.frame(), Push):
            pass
        return frame

    async def frame(self) -> Any:
        """The next frame: a reply, a `Push`, or a `RespError` raised for an error reply."""
        line = await self.reader.readuntil(b"\r\n")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RespError(body.decode())
        if kind == b":":
            return int(body)
        if kind in (b"$", b"="):
            size = int(body)
            if size < 0:
                return None
            data = await self.reader.readexactly(size + 2)
            return data[:-2]
        if kind == b"_":
            return None
        if kind == b"#":
            return body == b"t"
        if kind == b",":
            return float(body)
        if kind in (b"*", b"~", b">"):
            count = int(body)
            if count < 0:
                return None
            items = [await self.frame() for _ in range(count)]
            return Push(items) if kind == b">" else items
        if kind == b"%":
            return {await self.frame(): await self.frame() for _ in range(int(body))}
        raise RespError(f"unexpected frame {line[:40]!r}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()
