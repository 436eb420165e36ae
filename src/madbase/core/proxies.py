"""Which peers may speak for the client: `MADBASE_TRUSTED_PROXIES` (IP addresses or CIDR networks, default none).

A request's `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto` are anyone's to write. They are read
only when the TCP peer is one of the configured proxies; otherwise the peer address is the client, and the
`Host` header with the connection's own scheme is the public origin. The gateway decides once per request
(`RequestContext.via_trusted_proxy`, `client_ip`); services build URLs through `public_origin` so no service
reads the forwarded headers on its own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A host[:port] as it may appear in a URL's authority: no path, user-info, spaces or control characters.
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]{1,253})(:[0-9]{1,5})?$")


def parse_networks(spec: str) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 127.0.0.1 ::1"` → networks; raises ValueError naming the entry that is not one."""
    out: list[Network] = []
    for item in re.split(r"[,\s]+", spec.strip()):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(out)


class TrustedProxies:
    def __init__(self, networks: tuple[Network, ...]) -> None:
        self._networks = networks

    @classmethod
    def parse(cls, spec: str) -> TrustedProxies:
        return cls(parse_networks(spec))

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the peer, or, behind trusted proxies, the right-most `X-Forwarded-For` hop that
        is not itself a trusted proxy (hops further left were written by whoever the client was)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # a garbage hop is not an address: the last proxy's view is all we know
            client = hop
            if not self.trusts(hop):
                break
        return client


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def public_origin(headers: Mapping[str, str], scheme: str, *, trusted: bool) -> tuple[str, str]:
    """(scheme, host) of the URL the client used: `X-Forwarded-Proto/Host` only when the peer is a trusted
    proxy; the `Host` header otherwise. A malformed host falls back to `localhost`."""
    proto = scheme if scheme in ("http", "https") else "http"
    host = headers.get("host") or ""
    if trusted:
        fwd_proto = _first(headers.get("x-forwarded-proto")).lower()
        if fwd_proto in ("http", "https"):
            proto = fwd_proto
        fwd_host = _first(headers.get("x-forwarded-host"))
        if fwd_host:
            host = fwd_host
    if not _HOST_RE.match(host):
        host = "localhost"
    return proto, host
