"""A plugin's ``network:HOST`` grants as the proxy matches them.

A grant is parsed once into one canonical spelling (see request.canonical_host) so the
check compares like with like; a grant the resolver would read as an address is never
honoured, so a grant for a name cannot become a grant for an IP.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from deeting_tui.plugin.scopes import parse_scope

from .request import HttpError, canonical_host

__all__ = ["Grant", "grant_text", "is_literal", "parse_grant"]

log = logging.getLogger("deeting.netproxy")


@dataclass(frozen=True)
class Grant:
    host: str  # canonical like Target.host, or "*.name"
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and not host.startswith("[")
        return host == self.host


def is_literal(host: str) -> bool:
    """A canonical host (see canonical_host) that is an IP address, not a name."""
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def grant_text(host: str) -> str:
    target = parse_scope(f"network:{host}").target
    if target is None:
        raise ValueError(f"{host!r} is not a host: a network grant here names one host")
    return target


def parse_grant(text: str) -> Grant | None:
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        port = rest[1:]
    else:
        host, _, port = text.partition(":")
    if not host.startswith("*."):
        try:
            host = canonical_host(host)
        except HttpError as error:
            # The grammar allows names like "10.1" that the resolver would read as addresses;
            # honouring one would let a name grant reach an IP, so it never matches instead.
            log.warning("network grant %r is never honoured: %s", text, error.message)
            return None
    return Grant(host, int(port) if port else None)
