"""The address check: public addresses only, whichever form an IPv4 address arrives in."""

from ipaddress import ip_address

import pytest

from app.domains.webhooks.exceptions import WebhookTargetNotAllowed
from app.domains.webhooks.targets import checked_address, is_public

# IPv6 addresses that a translator or tunnel turns into these IPv4 addresses.
EMBEDDED = {
    "127.0.0.1": [
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
        "64:ff9b::7f00:1",  # NAT64, well-known prefix
        "2002:7f00:1::",  # 6to4
        "2002:7f00:1:1234::5",
    ],
    "10.0.0.1": ["::ffff:10.0.0.1", "::10.0.0.1", "::ffff:0:a00:1", "64:ff9b::a00:1"],
    "169.254.169.254": ["64:ff9b::a9fe:a9fe", "::ffff:0:a9fe:a9fe", "2002:a9fe:a9fe::"],
    "192.168.1.1": ["64:ff9b::c0a8:101", "2002:c0a8:101::1"],
    "100.64.0.1": ["64:ff9b::6440:1"],  # shared address space (carrier-grade NAT)
}
PRIVATE = [address for forms in EMBEDDED.values() for address in forms] + [
    # The local-use NAT64 prefix is not globally reachable, whatever it embeds.
    "64:ff9b:1::a00:1",
    "64:ff9b:1::808:808",
    "64:ff9b:1:ff00::",
]
PUBLIC = [
    "93.184.216.34",
    "2606:2800:220:1:248:1893:25c8:1946",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",  # NAT64 to 93.184.216.34
    "2002:5db8:d822::1",  # 6to4 from 93.184.216.34
]


@pytest.mark.parametrize("address", PRIVATE)
def test_an_ipv4_address_inside_ipv6_is_checked_as_itself(address: str) -> None:
    assert not is_public(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_in_any_form_pass(address: str) -> None:
    assert is_public(ip_address(address))


@pytest.mark.parametrize("address", PRIVATE)
async def test_a_url_on_such_an_address_is_refused(address: str) -> None:
    with pytest.raises(WebhookTargetNotAllowed):
        await checked_address(f"https://[{address}]/hook", allow_private=False)
    allowed = await checked_address(f"https://[{address}]/hook", allow_private=True)
    assert allowed == ip_address(address)
