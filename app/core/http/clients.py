"""Who is calling: the client address behind any trusted proxies."""

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import HTTPConnection

Network = IPv4Network | IPv6Network


def _parse_ip(value: str | None) -> IPv4Address | IPv6Address | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; compare them as IPv4.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve_client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted_proxies: Sequence[Network]
) -> str:
    """The client address: the peer, or the right-most untrusted `X-Forwarded-For` hop.

    `X-Forwarded-For` is read only when the peer is a trusted proxy, and only from the right,
    since everything left of the last trusted hop was written by the client and can be forged.
    """
    address = _parse_ip(peer)
    if address is None:
        return peer or "unknown"

    def trusted(candidate: IPv4Address | IPv6Address) -> bool:
        return any(candidate in network for network in trusted_proxies)

    if not trusted(address):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        hop_address = _parse_ip(hop)
        if hop_address is None:
            # A trusted proxy writes addresses only; the chain is unreliable from here on.
            break
        address = hop_address
        if not trusted(address):
            break
    return str(address)


def client_address(connection: HTTPConnection, trusted_proxies: Sequence[Network]) -> str:
    """The calling client's address, believing `X-Forwarded-For` only from `trusted_proxies`."""
    peer = connection.client.host if connection.client is not None else None
    return resolve_client_ip(peer, connection.headers.getlist("x-forwarded-for"), trusted_proxies)
