"""Where a webhook may point: public addresses only, unless private targets are allowed.

The check resolves the host and refuses the URL if any address it resolves to is not
public, since a client connecting could pick any of them. The sender then connects to the
address that was checked, never resolving the name a second time, so a DNS answer that
changes in between (rebinding) cannot redirect the request to an internal service.
"""

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import httpx

from app.core.errors import raises
from app.domains.webhooks.exceptions import WebhookTargetNotAllowed

Address = IPv4Address | IPv6Address
# How long a name may take to resolve before the target counts as unreachable.
RESOLVE_TIMEOUT_SECONDS = 5.0


def is_public(address: Address) -> bool:
    """Not loopback, private, link-local, or any other range that is not globally routed."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError) as error:
        raise WebhookTargetNotAllowed(f"The host {host} does not resolve.") from error
    addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookTargetNotAllowed(f"The host {host} does not resolve.")
    return addresses


@raises(WebhookTargetNotAllowed)
async def checked_address(url: str, *, allow_private: bool) -> Address:
    """The address to connect to for `url`, once every address of its host passed."""
    parsed = httpx.URL(url)
    addresses = await _resolve(
        parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
    )
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise WebhookTargetNotAllowed(
                    f"{parsed.host} resolves to {address}, which is not a public address "
                    "(loopback, private, link-local and reserved ranges are refused)."
                )
    return addresses[0]
