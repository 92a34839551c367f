"""SSRF guard for URL fetching: which hosts and addresses a fetch may connect to.

Pure policy (`UrlPolicy`) plus one aiohttp resolver (`GuardedResolver`) that applies it to
every DNS answer the connector will actually connect to, so a name cannot pass a check and
then re-resolve to an internal address (DNS rebinding). aiohttp skips the resolver for IP
literals, so `refusal_for_url` checks literal hosts before every hop.

Hosts are read the way resolvers read them (`host_address`): `inet_aton` and the WHATWG URL
standard accept `2130706433`, `127.1`, `0177.0.0.1` and `0x7f.1` as 127.0.0.1, and an IPv6
literal may wrap an IPv4 address (`::ffff:127.0.0.1`). A guard that only parsed dotted quads
would wave those through to a socket layer that connects to loopback; older aiohttp releases
passed some of them straight to the socket, so the guard must not rely on the client for this.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote

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


# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits; the gateway connects to it.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# One part of a numeric IPv4 host as inet_aton reads it: 0x hex, leading-0 octal, decimal.
_NUMBER_PART = re.compile(r"0x[0-9a-f]*|[0-9]+")


class InvalidHost(ValueError):
    """A host no resolver would read as one address or one name (e.g. `1.2.3.4.5`)."""


def address_refusal(ip: IPAddress) -> str | None:
    """Why an address is off limits ('loopback', 'private', ...), or None for public ones."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 address are judged by it (::ffff:127.0.0.1 is loopback).
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
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


def host_address(host: str) -> IPAddress | None:
    """The address a URL host names when it is an IP literal in any notation a resolver
    accepts, None when it is a name. Raises InvalidHost for a host that is neither.

    `[::ffff:7f00:1]`, `2130706433`, `127.1`, `0177.0.0.1`, `0x7f.1` and `127.0.0.1.` all
    give 127.0.0.1's address (IPv6 forms are judged later by the IPv4 address they embed).
    Percent-escapes are decoded first, as the WHATWG URL parser does.
    """
    name = unquote(host).strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if ":" in name:
        try:
            return ipaddress.IPv6Address(name.split("%", 1)[0])  # drop a zone id (fe80::1%eth0)
        except ValueError:
            raise InvalidHost(f"not an IPv6 address: {host}") from None
    name = name.removesuffix(".")
    parts = name.split(".")
    # WHATWG "ends in a number": such a host is an IPv4 address or invalid, never a name.
    if not _NUMBER_PART.fullmatch(parts[-1]):
        return None
    return _inet_aton(parts, host)


def _inet_aton(parts: list[str], host: str) -> ipaddress.IPv4Address:
    """1 to 4 numbers; the last fills the remaining bytes (`127.1` = 127.0.0.1)."""
    invalid = InvalidHost(f"not an IPv4 address: {host}")
    if not 1 <= len(parts) <= 4:
        raise invalid
    numbers = []
    for part in parts:
        if not _NUMBER_PART.fullmatch(part):
            raise invalid
        try:
            if part.startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:  # 08, 09: not octal
            raise invalid from None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise invalid
    value = last
    for i, n in enumerate(leading):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _name_matches(name: str, patterns: frozenset[str]) -> bool:
    """`name` is listed, or is under a listed `*.domain` wildcard."""
    if name in patterns:
        return True
    return any(p.startswith("*.") and name.endswith(p[1:]) for p in patterns)


@dataclass(frozen=True)
class UrlPolicy:
    """What a fetch may reach. The default allows public addresses only.

    allowed_networks: CIDRs exempt from the address rules (e.g. "127.0.0.1/32" for tests, or
    an intranet wiki's subnet, deliberately). allowed_hosts: names (or `*.domain` wildcards)
    whose DNS answers are trusted whatever address they give (URL_ALLOW_HOSTS).
    blocked_hosts: names refused outright.
    """

    allowed_networks: tuple[str, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    blocked_hosts: frozenset[str] = field(default=METADATA_HOSTS)

    @classmethod
    def from_allow_list(cls, entries: tuple[str, ...] | list[str]) -> UrlPolicy:
        """A policy trusting what an admin listed: IPs and CIDRs as networks, the rest as
        host names (`wiki.corp.example`, `*.corp.example`). Empty: public addresses only."""
        networks: list[str] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower().removesuffix(".")
            if not entry:
                continue
            try:
                networks.append(str(ipaddress.ip_network(entry, strict=False)))
            except ValueError:
                hosts.add(entry)
        return cls(allowed_networks=tuple(networks), allowed_hosts=frozenset(hosts))

    @cached_property
    def _networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(net, strict=False) for net in self.allowed_networks)

    def host_allowed(self, host: str) -> bool:
        """An admin listed this name: its DNS answers may be private."""
        return bool(self.allowed_hosts) and _name_matches(
            host.rstrip(".").lower(), self.allowed_hosts
        )

    def refusal_for_address(self, ip: IPAddress) -> str | None:
        if any(ip.version == net.version and ip in net for net in self._networks):
            return None
        return address_refusal(ip)

    def refusal_for_name(self, host: str) -> str | None:
        """Refuse by name: localhost names (RFC 6761) and cloud metadata hosts."""
        name = host.rstrip(".").lower()
        if self.host_allowed(name):
            return None
        if name == "localhost" or name.endswith(".localhost"):
            return f"refused: {name} is a loopback name"
        if name in self.blocked_hosts:
            return f"refused: {name} is a cloud metadata host"
        return None

    def refusal_for_host(self, host: str) -> str | None:
        """Checks on a host that need no DNS: IP literals in every notation, and names."""
        try:
            ip = host_address(host)
        except InvalidHost:
            return f"invalid URL host {host}"
        if ip is None:
            return self.refusal_for_name(host)
        kind = self.refusal_for_address(ip)
        return f"refused: a {kind} address ({ip})" if kind else None

    def refusal_for_url(self, url: URL) -> str | None:
        """Checks that need no DNS: scheme, names, and hosts that are IP literals."""
        if url.scheme not in ALLOWED_SCHEMES:
            return f"unsupported URL scheme {url.scheme or '(none)'}: only http and https"
        host = url.raw_host
        if not host:
            return "invalid URL: no host"
        return self.refusal_for_host(host)


def parse_ip(host: str) -> IPAddress | None:
    """An address from a resolver's answer (always canonical), or None."""
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
        reason = self._policy.refusal_for_host(host)
        if reason:
            raise AddressRefused(host, reason)
        results = await self._inner.resolve(host, port, family)
        if self._policy.host_allowed(host):
            return results  # URL_ALLOW_HOSTS: the admin trusts this name's answers
        for result in results:
            ip = parse_ip(result["host"])
            kind = "unparseable" if ip is None else self._policy.refusal_for_address(ip)
            if kind:
                raise AddressRefused(host, f"refused: resolves to a {kind} address ({ip})")
        return results

    async def close(self) -> None:
        await self._inner.close()
