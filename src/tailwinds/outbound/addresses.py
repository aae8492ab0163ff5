"""Which network addresses an outbound connection may use.

Judged on the address the socket is about to connect to (resolved, numeric), never on the
name in the URL: full-width digits, ideographic full stops, `2130706433`, `0x7f.1` and
`0177.0.0.1` are all 127.0.0.1 by the time a connection uses them. An IPv6 address that carries an
IPv4 one (mapped, compatible, SIIT-translated, NAT64, 6to4, Teredo) is judged by the IPv4
address the packets end up at.

Special-purpose ranges: the IANA IPv4 and IPv6 Special-Purpose Address Registries
(RFC 6890), through `ipaddress`, plus the checks below that `ipaddress` leaves out in
some Python versions (multicast and site-local count as global there).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """The URL, or the address it leads to, is not one this request may reach."""


# cloud metadata services hand out the machine's credentials: refused even where private
# addresses are allowed, unless the operator names them in TAILWINDS_OUTBOUND_NETWORKS
METADATA = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        "169.254.170.2/32",  # AWS ECS task metadata
        "169.254.170.23/32",  # AWS EKS pod identity
        "fd00:ec2::254/128",  # AWS IMDS over IPv6
        "fd00:ec2::23/128",  # AWS EKS pod identity over IPv6
        "100.100.100.200/32",  # Alibaba Cloud
        "168.63.129.16/32",  # Azure WireServer (a public address)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: where the IPv4 sits varies
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """`"10.0.0.0/8, 127.0.0.1, fd12::/16"` as networks (a bare address is a /32 or /128).
    Raises ValueError naming the entry that is not one."""
    networks = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP network (e.g. 10.0.0.0/8): {exc}") from exc
    return tuple(networks)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses packets to `ip` end up at, when `ip` is a transition form."""
    found: list[ipaddress.IPv4Address] = []
    n = int(ip)
    low = ipaddress.IPv4Address(n & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        found.append(ip.ipv4_mapped)
    elif (n >> 32 == 0 and n > 1) or n >> 32 == 0xFFFF0000:
        # ::a.b.c.d, IPv4-compatible (deprecated, RFC 4291); ::ffff:0:a.b.c.d, SIIT (RFC 2765)
        found.append(low)
    if ip in _NAT64:
        found.append(low)
    if ip.sixtofour is not None:  # 2002:AABB:CCDD::/48
        found.append(ip.sixtofour)
    if ip.teredo is not None:  # 2001:0::/32: the relay, and the client behind its NAT
        found.extend(ip.teredo)
    return found


def _non_public(ip: IPAddress) -> str | None:
    """What kind of special address `ip` is, or None when it is a public unicast one."""
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and (ip.is_site_local or ip in _NAT64_LOCAL):
        return "a site-local address"
    if ip.is_private or not ip.is_global or ip.is_reserved:
        return "a private or reserved address"
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses a connection may use.

    `private`: private, loopback, link-local and unique-local addresses too (servers the
    operator configured: Chroma, embedding servers); cloud metadata, unspecified,
    multicast and broadcast addresses stay refused. `networks`: allowed whatever they are,
    because the operator named them (TAILWINDS_OUTBOUND_NETWORKS)."""

    private: bool = False
    networks: tuple[IPNetwork, ...] = ()

    def refusal(self, address: str) -> str | None:
        """Why a connection to the numeric `address` (IPv6 may carry a `%scope`) is
        refused, or None when it may go ahead."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not a numeric address"
        if self._named(ip):
            return None
        targets: Iterable[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.teredo is not None and not self.private:
                return f"{ip} is a Teredo address"
            targets = embedded_ipv4(ip) or targets
            if ip in _NAT64_LOCAL and not self.private:
                return f"{ip} is a local-use NAT64 address"
        for target in targets:
            reason = self._judge(target)
            if reason is not None:
                shown = str(ip) if target == ip else f"{ip} (which reaches {target})"
                return f"{shown} is {reason}"
        return None

    def check(self, address: str) -> None:
        """Raise `Refused` saying why, when `address` may not be connected to."""
        reason = self.refusal(address)
        if reason is not None:
            raise Refused(reason)

    def _named(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)

    def _judge(self, ip: IPAddress) -> str | None:
        if self._named(ip):
            return None
        if any(ip.version == net.version and ip in net for net in METADATA):
            return "a cloud metadata address"
        if ip.is_unspecified or ip.is_multicast or ip == _BROADCAST:
            return "not an address a server can be reached at"
        if isinstance(ip, ipaddress.IPv4Address) and ip.packed[0] == 0:
            return "not an address a server can be reached at"  # 0.0.0.0/8: "this host"
        reason = _non_public(ip)
        if reason is None or self.private:
            return None
        return reason


PUBLIC = AddressPolicy()
"""Public unicast addresses only: what a caller or a model may reach."""
