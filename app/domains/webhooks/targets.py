"""Where a webhook may point: public addresses only, unless private targets are allowed.

The check resolves the host and refuses the URL if any address it resolves to is not
public, since a client connecting could pick any of them. The sender then connects to the
address that was checked, never resolving the name a second time, so a DNS answer that
changes in between (rebinding) cannot redirect the request to an internal service.

An IPv6 address can carry an IPv4 one that a translator or tunnel on the way delivers to
(NAT64, 6to4, the mapped, compatible and translated forms), so such an address is public
only if the IPv4 address inside it is too.

A refusal says the same whatever the reason: telling an administrator that a name resolves
to 10.0.0.7, or does not resolve at all, would map the internal network for them.
"""

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

import httpx

from app.core.errors import raises
from app.domains.webhooks.exceptions import WebhookTargetNotAllowed

Address = IPv4Address | IPv6Address
# How long a name may take to resolve before the target counts as unreachable.
RESOLVE_TIMEOUT_SECONDS = 5.0


# IPv6 prefixes whose last 32 bits are an IPv4 address something on the path delivers to.
_IPV4_IN_LOW_BITS = (
    IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    IPv6Network("::/96"),  # IPv4-compatible (deprecated, still routed by some stacks)
    IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
)
# NAT64 for local use (RFC 8215): the IPv4 address sits where the operator's prefix length
# puts it, and the range is not globally reachable at all.
_NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries for translation or tunnelling, if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in _IPV4_IN_LOW_BITS):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Not loopback, private, link-local, or any other range that is not globally routed,
    in any form an IPv4 address can take inside an IPv6 one."""
    if isinstance(address, IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return False
        carried = embedded_ipv4(address)
        if carried is not None and not is_public(carried):
            return False
        if address.ipv4_mapped is not None:
            # The mapped range itself is reserved; what counts is the address it maps.
            return True
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
        raise WebhookTargetNotAllowed from error
    addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookTargetNotAllowed
    return addresses


@raises(WebhookTargetNotAllowed)
async def checked_address(url: str, *, allow_private: bool) -> Address:
    """The address to connect to for `url`, once every address of its host passed."""
    parsed = httpx.URL(url)
    addresses = await _resolve(
        parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
    )
    if not allow_private and not all(is_public(address) for address in addresses):
        raise WebhookTargetNotAllowed
    return addresses[0]
