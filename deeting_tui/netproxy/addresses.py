"""Which addresses a granted host *name* may lead to: the answer to DNS rebinding.

A grant names a host; DNS decides where it points, and whoever controls a name's DNS can
point it at 127.0.0.1, the router at 192.168.1.1 or a cloud's metadata service at
169.254.169.254 — the user's own machine and network, which the grant never meant. So an
answer that is not a public address is refused unless a grant names that very address (an
IP literal such as ``network:192.168.1.20``), and ``localhost`` — loopback by definition
(RFC 6761) — may reach loopback and nothing else. Pure functions, tested directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["is_public", "unwrap", "vet"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def unwrap(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), else itself: a
    private IPv4 address must not pass dressed as IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: Address) -> bool:
    """A global unicast address: not loopback, private, link-local, shared (CGNAT),
    multicast, reserved or unspecified — in IPv4 or in any IPv6 dress."""
    inner = unwrap(address)
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return False
    return bool(
        inner.is_global
        and not inner.is_multicast
        and not inner.is_reserved
        and not inner.is_unspecified
        and not inner.is_loopback
        and not inner.is_link_local
        and not inner.is_private
    )


def vet(
    host: str, answers: Iterable[str], granted_literals: Iterable[str]
) -> tuple[list[str], str | None]:
    """Split the resolved ``answers`` for name ``host`` into those that may be used, in
    order, and the reason the first refused one was refused (None when none was).
    ``granted_literals`` are the IP addresses the plugin's grants name literally (canonical
    text, IPv6 without brackets)."""
    literals = {ipaddress.ip_address(text) for text in granted_literals}
    localhost = host == "localhost" or host.endswith(".localhost")
    usable: list[str] = []
    why: str | None = None
    for text in answers:
        address = ipaddress.ip_address(text.partition("%")[0])
        if address in literals or unwrap(address) in literals:
            usable.append(text)
        elif localhost:
            if unwrap(address).is_loopback:
                usable.append(text)
            else:
                why = why or f"{host} resolved to {address}, which is not a loopback address"
        elif is_public(address):
            usable.append(text)
        else:
            why = why or (
                f"{host} resolved to {address}, an address on this machine or a private "
                f"network — a grant for a name does not reach those (grant network:"
                f"{_literal(address)} to allow that address)"
            )
    return usable, why


def _literal(address: Address) -> str:
    return f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
