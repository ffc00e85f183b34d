"""Where the gateway may send a request that carries a credential: the egress policy.

Pure: no Django, no I/O except an injected resolver. Used for provider base URLs when they are
saved and, through `routing/core/egress_transport.py`, for every address the shared HTTP client
connects to (a name may resolve elsewhere at connect time than when it was saved). Anything that
sends secrets to an operator-chosen URL (upstream MCP servers, webhooks) can use the same policy.

The rules, in order:
- never: cloud metadata endpoints, link-local (169.254.0.0/16, fe80::/10), unspecified
  (0.0.0.0, ::) and multicast addresses, whatever else is allowed;
- loopback (127.0.0.0/8, ::1, `localhost`) only with `allow_loopback`;
- private and other non-public ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, ...)
  only with `allow_private`;
- when `allow` lists hosts or networks, only those (host names, `*.domain` for its
  subdomains, CIDR networks); an empty list allows every public address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A resolver for the save-time check: host name -> addresses (raises OSError when it cannot).
Resolve = Callable[[str], Sequence[str]]

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
# fd00:ec2::254 sits in fc00::/7, which is private: it must be refused before that rule.
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(OSError):
    """The policy forbids this destination. `rule` is a stable name for the rule that refused it.

    An OSError so that, raised from a DNS resolver, the HTTP client reports it as a failed
    connection (at once, never a hang) with this error as the cause.
    """

    def __init__(self, rule: str, host: str, detail: str) -> None:
        super().__init__(f"{host}: {detail} (egress rule '{rule}')")
        self.rule, self.host, self.detail = rule, host, detail


_MAX_VERDICTS = 1024


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_names: tuple[str, ...] = ()  # exact host names, or ".domain" for `*.domain`
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_private: bool = False
    allow_loopback: bool = False
    entries: tuple[str, ...] = field(default=(), compare=False)  # as written, for messages
    # check_host's verdict per host name: a pure function of the policy and the name (no DNS),
    # asked on every proxied call (2% of its samples, docs/perf/). None = allowed.
    _verdicts: dict[str, tuple[str, str, str] | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def parse(
        cls, allow: Iterable[str] = (), *, allow_private: bool = False, allow_loopback: bool = False
    ) -> EgressPolicy:
        """Build from settings; raises ValueError naming an entry it cannot read."""
        names: list[str] = []
        networks: list[IPNetwork] = []
        entries = tuple(entry.strip() for entry in allow if entry.strip())
        for entry in entries:
            lowered = entry.lower().rstrip(".")
            if lowered.startswith("*.") and _is_host_name(lowered[2:]):
                names.append(lowered[1:])
            elif _is_host_name(lowered) and _ip_literal(lowered) is None:
                names.append(lowered)
            else:
                try:
                    networks.append(ipaddress.ip_network(lowered, strict=False))
                except ValueError:
                    raise ValueError(
                        f"{entry!r} is not a host name, '*.domain' or a CIDR network"
                    ) from None
        return cls(
            allow_names=tuple(names),
            allow_networks=tuple(networks),
            allow_private=allow_private,
            allow_loopback=allow_loopback,
            entries=entries,
        )

    @property
    def restricted(self) -> bool:
        return bool(self.allow_names or self.allow_networks)

    def names_host(self, host: str) -> bool:
        """Whether the allow list names this host (exactly, or by a `*.domain` entry)."""
        host = _normal_host(host)
        return any(
            host.endswith(entry) if entry.startswith(".") else host == entry
            for entry in self.allow_names
        )

    def check_address(self, host: str, address: str) -> None:
        """Refuse a connection to `address` (which `host` resolved to, or is)."""
        ip = _ip_literal(address)
        if ip is None:
            raise EgressRefused("invalid_address", host, f"{address!r} is not an IP address")
        ip = _embedded_ipv4(ip) or ip
        shown = host if host == str(ip) else f"{host} ({ip})"
        if ip in _METADATA_ADDRESSES:
            raise EgressRefused("metadata", shown, "a cloud metadata endpoint is never allowed")
        if any(ip in network for network in _LINK_LOCAL):
            raise EgressRefused("link_local", shown, "link-local addresses are never allowed")
        if ip.is_unspecified or ip.is_multicast:
            # 0.0.0.0 reaches this very host on Linux; multicast is no single server.
            rule = "unspecified" if ip.is_unspecified else "multicast"
            raise EgressRefused(rule, shown, "not the address of a server")
        if ip.is_loopback:
            if not self.allow_loopback:
                raise EgressRefused(
                    "loopback", shown, "loopback is not allowed (GATEWAY_EGRESS_ALLOW_LOOPBACK)"
                )
        elif not ip.is_global and not self.allow_private:
            raise EgressRefused(
                "private",
                shown,
                "private or reserved addresses are not allowed (GATEWAY_EGRESS_ALLOW_PRIVATE)",
            )
        if self.restricted and not (
            self.names_host(host) or any(ip in net for net in self.allow_networks)
        ):
            raise EgressRefused("not_allowed", shown, "not in GATEWAY_EGRESS_ALLOW")

    def check_host(self, host: str) -> None:
        """What can be decided from the name alone, before any DNS lookup."""
        try:
            verdict = self._verdicts[host]
        except KeyError:
            try:
                self._check_host(host)
                verdict = None
            except EgressRefused as refusal:
                verdict = (refusal.rule, refusal.host, refusal.detail)
            if len(self._verdicts) < _MAX_VERDICTS:
                self._verdicts[host] = verdict
        if verdict is not None:
            raise EgressRefused(*verdict)

    def _check_host(self, host: str) -> None:
        host = _normal_host(host)
        if not host:
            raise EgressRefused("invalid_url", "(none)", "the URL has no host")
        ip = _ip_literal(host)
        if ip is not None:
            self.check_address(host, str(ip))
            return
        if host in _METADATA_NAMES:
            raise EgressRefused("metadata", host, "a cloud metadata endpoint is never allowed")
        if host == "localhost" or host.endswith(".localhost"):
            # Always resolves to loopback (RFC 6761), whatever DNS says.
            self.check_address(host, "127.0.0.1")
            return
        if self.restricted and not self.allow_networks and not self.names_host(host):
            raise EgressRefused("not_allowed", host, "not in GATEWAY_EGRESS_ALLOW")

    def check_url(self, url: str, *, resolve: Resolve | None = None) -> None:
        """The save-time check of a base URL. With `resolve`, also every address the host has
        now. A name that does not resolve here is not refused (it is checked again at connect
        time), unless only a listed network could admit it."""
        parts = _split(url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise EgressRefused("scheme", url, "only http and https URLs are allowed")
        host = _normal_host(parts.hostname or "")
        try:
            valid = bool(host) and bool(host.encode("idna"))
        except UnicodeError:
            valid = False
        if not valid:
            raise EgressRefused("invalid_host", url, "the URL has no valid host name")
        self.check_host(host)
        if resolve is None or _ip_literal(host) is not None:
            return
        try:
            addresses = resolve(host)
        except OSError:
            if self.restricted and not self.names_host(host):
                # Only its address could admit it (a listed network), and it has none here.
                raise EgressRefused(
                    "not_allowed", host, "not in GATEWAY_EGRESS_ALLOW (and it does not resolve)"
                ) from None
            return
        for address in addresses:
            self.check_address(host, address)

    def allowed_addresses(self, host: str, addresses: Sequence[str]) -> list[str]:
        """The connect-time check: the addresses of `host` the policy allows, in order; raises
        the first refusal when there are none (a host that also resolves to a forbidden
        address is reached only at its allowed ones)."""
        self.check_host(host)
        allowed: list[str] = []
        first: EgressRefused | None = None
        for address in addresses:
            try:
                self.check_address(host, address)
            except EgressRefused as refusal:
                first = first or refusal
            else:
                allowed.append(address)
        if not allowed:
            raise first or EgressRefused("no_address", host, "the name has no address")
        return allowed


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what a credential is
    sent to. Two URLs with the same origin differ only in their path."""
    try:
        parts = _split(url.strip())
    except EgressRefused:
        return "", "", None
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, _normal_host(parts.hostname or ""), port or _DEFAULT_PORTS.get(scheme)


def _split(url: str) -> SplitResult:
    """urlsplit, with what it cannot parse (an unclosed "[", a port that is no number or out of
    range) refused as an invalid URL rather than raised as ValueError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise EgressRefused("invalid_url", url[:200], f"the URL cannot be parsed ({exc})") from None
    return parts


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _is_host_name(name: str) -> bool:
    labels = name.split(".")
    return bool(name) and all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    )


def _ip_literal(host: str) -> IPAddress | None:
    """An IP address written in any form a resolver accepts: also `127.1` or `2130706433`."""
    host = _normal_host(host).split("%", 1)[0]  # an IPv6 zone id does not change the address
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton parses without I/O, and is as lenient as getaddrinfo with IPv4 forms.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it goes."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
