"""SSRF guard for URL fetching: which hosts and addresses a fetch may connect to.

Pure policy (`UrlPolicy`) plus one aiohttp resolver (`GuardedResolver`) that applies it to
every DNS answer the connector will actually connect to, so a name cannot pass a check and
then re-resolve to an internal address (DNS rebinding). aiohttp skips the resolver for IP
literals, so `refusal_for_url` checks literal hosts before every hop.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from functools import cached_property

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})

# Cloud instance-metadata endpoints by name (their addresses are link-local or private and
# are refused by address as well).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)


def address_refusal(ip: IPAddress) -> str | None:
    """Why an address is off limits ('loopback', 'private', ...), or None for public ones."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 address are judged by it (::ffff:127.0.0.1 is loopback).
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_refusal(embedded)
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "non-public"),
    )
    return next((kind for hit, kind in checks if hit), None)


@dataclass(frozen=True)
class UrlPolicy:
    """What a fetch may reach. The default allows public addresses only.

    allowed_networks: CIDRs exempt from the address rules (e.g. "127.0.0.1/32" for tests, or
    an intranet wiki's subnet, deliberately). blocked_hosts: names refused outright.
    """

    allowed_networks: tuple[str, ...] = ()
    blocked_hosts: frozenset[str] = field(default=METADATA_HOSTS)

    @cached_property
    def _networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(net, strict=False) for net in self.allowed_networks)

    def refusal_for_address(self, ip: IPAddress) -> str | None:
        if any(ip.version == net.version and ip in net for net in self._networks):
            return None
        return address_refusal(ip)

    def refusal_for_name(self, host: str) -> str | None:
        """Refuse by name: localhost names (RFC 6761) and cloud metadata hosts."""
        name = host.rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost"):
            return f"refused: {name} is a loopback name"
        if name in self.blocked_hosts:
            return f"refused: {name} is a cloud metadata host"
        return None

    def refusal_for_url(self, url: URL) -> str | None:
        """Checks that need no DNS: scheme, names, and hosts that are IP literals."""
        if url.scheme not in ALLOWED_SCHEMES:
            return f"unsupported URL scheme {url.scheme or '(none)'}: only http and https"
        host = url.raw_host
        if not host:
            return "invalid URL: no host"
        ip = parse_ip(host)
        if ip is None:
            return self.refusal_for_name(host)
        kind = self.refusal_for_address(ip)
        return f"refused: a {kind} address ({ip})" if kind else None


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class AddressRefused(OSError):
    """Raised by GuardedResolver; an OSError so aiohttp wraps it as a connector error."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


class GuardedResolver(AbstractResolver):
    """Resolves with `inner` (the system resolver by default) and refuses the whole answer if
    any address is off limits: a mixed answer is how rebinding attacks hedge."""

    def __init__(self, policy: UrlPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        reason = self._policy.refusal_for_name(host)
        if reason:
            raise AddressRefused(host, reason)
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = parse_ip(result["host"])
            kind = "unparseable" if ip is None else self._policy.refusal_for_address(ip)
            if kind:
                raise AddressRefused(host, f"refused: resolves to a {kind} address ({ip})")
        return results

    async def close(self) -> None:
        await self._inner.close()
