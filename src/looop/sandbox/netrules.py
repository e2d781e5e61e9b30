"""The network rules of a sandboxed box, as srt's filtering proxy applies them: which host and
port a box may reach by its allow list, and which of the addresses a name resolves to may be
dialled. Pure functions over strings and addresses: the filter that serves the boxes calls
them, and tests/sandbox/test_netrules_parity.py holds each verdict equal to srt's own proxy.

What a destination goes through, in srt's order:
1. the host is well formed (`valid_host`): at most 255 bytes, an IP literal or only letters,
   digits, `.`, `_` and `-` (no zone id, no percent, nothing a URL parser would decode);
2. it is canonicalised as a browser's URL parser does (`canonical_host`), so every spelling of
   one address compares as one: `127.1`, `0x7f.0.0.1`, `2130706433` and `0177.0.0.1` are
   `127.0.0.1`, `[::ffff:7f00:1]` is too, case and one trailing dot go;
3. a deny entry matching it refuses it; else an allow entry matching it lets it through;
   nothing else passes (`verdict`);
4. a name (not an IP literal) is resolved and each address vetted (`vet`): one in the deny
   list's IP entries is refused; one an allow entry names by IP is kept; a loopback name
   (`localhost`, `*.localhost`) keeps only loopback addresses; otherwise loopback,
   unspecified, link-local, multicast, broadcast and cloud metadata addresses are refused,
   and so is any address of this machine's own interfaces — an allowed name pointed at one
   of those reaches nothing. IPv4 carried inside IPv6 (mapped, compatible, NAT64, 6to4) is
   judged as the IPv4 it carries.

An entry is a host pattern with an optional `:port`: `example.com`, `*.example.com` (strict
subdomains only), `localhost`, an IPv4 literal, a bracketed IPv6 literal (`[::1]:8080`)."""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable
from typing import NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

HOST_MAX = 255
_HOST_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_OCT = re.compile(r"[0-7]*")

# Where an address leads somewhere a box must not go by a name it was allowed, srt's classes.
_CLOUD_METADATA = (
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure WireServer
    "192.0.0.192",  # Oracle Cloud Infrastructure Classic
    "fd00:ec2::/32",  # AWS IPv6 services (IMDS, EKS pod identity, DNS, NTP)
    "fd20:ce::254",  # Google Cloud, IPv6-only instances
    "fd00:c1::a9fe:a9fe",  # Oracle Cloud Infrastructure IPv6
    "fd00:42::42",  # Scaleway IPv6
    "fd00:a9fe:a9fe::1",  # Akamai / Linode IPv6
    "fd00:100::100:200",  # Alibaba Cloud IPv6
)
_LOOPBACK = ("127.0.0.0/8", "::1")
DENIED_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("a loopback address", _LOOPBACK),
    ("an unspecified address", ("0.0.0.0/8", "::")),
    ("a link-local address", ("169.254.0.0/16", "fe80::/10")),
    ("a multicast address", ("224.0.0.0/4", "ff00::/8")),
    ("the broadcast address", ("255.255.255.255",)),
    ("a cloud metadata address", _CLOUD_METADATA),
)


class Entry(NamedTuple):
    """One allow- or deny-list entry: a host pattern (canonical when it is an IP literal) and
    the one port it is limited to, if any."""

    host: str
    port: int | None


class Lists(NamedTuple):
    """A box's lists, parsed. `allowed`/`denied`: every entry; the `*_ips` are the IP-literal
    entries as networks with their port, for vetting resolved addresses."""

    allowed: tuple[Entry, ...]
    denied: tuple[Entry, ...]
    allowed_ips: tuple[tuple[Network, int | None], ...]
    denied_ips: tuple[tuple[Network, int | None], ...]


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_ip(host: str) -> bool:
    """An IP literal (IPv4 dotted quad or IPv6, unbracketed), as a canonical host is spelled."""
    return _ip(host) is not None


def _drop_zone(host: str) -> str:
    return host.split("%", 1)[0]


def _unbracket(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def split_entry(pattern: str) -> Entry:
    """`api.github.com:443` -> (api.github.com, 443); `[::1]:8080` -> (::1, 8080); a suffix
    that is not a plain port in 1-65535 stays part of the host (`evil.com:443.allowed.com`
    is one host, which then fails validation), and an unbracketed string with two colons or
    more is an IPv6 address, never split."""
    if pattern.startswith("["):
        close = pattern.find("]")
        if close < 0:
            return Entry(pattern, None)
        inner = _drop_zone(pattern[1:close])
        host = canonical_host(inner) or inner
        rest = pattern[close + 1 :]
        if rest == "":
            return Entry(host, None)
        port = _port(rest[1:] if rest.startswith(":") else "")
        return Entry(pattern, None) if port is None else Entry(host, port)
    idx = pattern.rfind(":")
    if idx < 0:
        return Entry(pattern, None)
    if pattern.find(":") != idx:
        host = _drop_zone(pattern)
        return Entry(canonical_host(host) or host, None)
    port = _port(pattern[idx + 1 :])
    return Entry(pattern, None) if port is None else Entry(pattern[:idx], port)


def _port(text: str) -> int | None:
    if not _PORT.fullmatch(text):
        return None
    port = int(text)
    return port if port <= 65535 else None


def valid_pattern(host: str) -> bool:
    """A host pattern an allow list may hold: a domain with a dot, `localhost`, `*.` and a
    domain of two labels or more, or an IPv6 literal; never a scheme, a path or a bare `*`."""
    ip = _ip(host)
    if ip is not None and ip.version == 6:
        return True
    if "://" in host or "/" in host or ":" in host:
        return False
    if host == "localhost":
        return True
    if host.startswith("*."):
        domain = host[2:]
        if "." not in domain or domain.startswith(".") or domain.endswith("."):
            return False
        return all(domain.split("."))
    if "*" in host:
        return False
    return "." in host and not host.startswith(".") and not host.endswith(".")


def valid_entry(entry: str) -> bool:
    """An allow-list entry srt accepts: a valid pattern with an optional `:port`, an IPv6
    literal only in brackets."""
    first = entry.find(":")
    if first >= 0 and entry.find(":", first + 1) >= 0 and not entry.startswith("["):
        return False
    return valid_pattern(split_entry(entry).host)


def valid_host(host: str) -> bool:
    """A destination host a box may name at all (before any list is read)."""
    if not host or len(host) > HOST_MAX:
        return False
    bare = _unbracket(host)
    if "%" in bare:
        return False
    return _ip(bare) is not None or _HOST_CHARS.fullmatch(bare) is not None


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 host as a URL parser reads it: decimal, 0x hex or 0-led octal."""
    if part == "":
        return None
    digits, radix, pattern = part, 10, _DIGITS
    if part[:2] in ("0x", "0X"):
        digits, radix, pattern = part[2:], 16, _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, radix, pattern = part[1:], 8, _OCT
    if digits == "":
        return 0
    if not pattern.fullmatch(digits):
        return None
    return int(digits, radix)


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    return bool(_DIGITS.fullmatch(last)) or _ipv4_number(last) is not None


def _ipv4_host(host: str) -> str | None:
    """The dotted quad a numeric host names (`127.1`, `0x7f.1`, `2130706433`), None when the
    URL parser would refuse it."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        return None
    value = nums[-1] + sum(n * 256 ** (3 - i) for i, n in enumerate(nums[:-1]))
    return str(ipaddress.IPv4Address(value))


def canonical_host(host: str) -> str | None:
    """The one spelling of `host` every check compares (see the module doc); None where a
    URL parser would refuse it (the caller then compares the host as given, as srt does)."""
    bare = _unbracket(host)
    ip = _ip(bare) if ":" in bare else None
    if ip is not None:
        if "%" in bare:
            return None
        return _v6_text(ip)
    if bare == "" or not _HOST_CHARS.fullmatch(bare):
        return None
    low = bare.lower()
    if _ends_in_number(low):
        return _ipv4_host(low)
    for label in low.split("."):
        if label.startswith("xn--") and not _punycode_ok(label[4:]):
            return None
    low = low.removesuffix(".")
    return low or None  # `.` alone names no host


def _punycode_ok(text: str) -> bool:
    try:
        text.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return False
    return True


def _v6_text(ip: IPAddress) -> str:
    if ip.version == 6:
        assert isinstance(ip, ipaddress.IPv6Address)
        mapped = ip.ipv4_mapped
        return str(mapped) if mapped is not None else ip.compressed
    return str(ip)


def _host_matches(host: str, pattern: str) -> bool:
    h = host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        if _ip(_unbracket(h)) is not None:
            return False  # a wildcard never matches an address
        return h.endswith("." + pattern[2:].lower())
    return h == pattern.lower()


def matches(host: str, port: int, entry: Entry) -> bool:
    return (entry.port is None or entry.port == port) and _host_matches(host, entry.host)


def _network(text: str) -> Network | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            if net.prefixlen < 96:
                return None
            return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}", strict=False)
    return net


def _ip_rules(entries: Iterable[Entry]) -> tuple[tuple[Network, int | None], ...]:
    out = []
    for e in entries:
        if _ip(e.host) is not None and (net := _network(e.host)) is not None:
            out.append((net, e.port))
    return tuple(out)


def parse_lists(allowed: Iterable[str], denied: Iterable[str] = ()) -> Lists:
    """A box's lists; raises ValueError naming the first entry srt would refuse."""
    for entry in allowed:
        if not valid_entry(entry):
            raise ValueError(f"not a domain, a *.domain or an IP literal: {entry!r}")
    a = tuple(split_entry(e) for e in allowed)
    d = tuple(split_entry(e) for e in denied)
    return Lists(a, d, _ip_rules(a), _ip_rules(d))


def verdict(lists: Lists, host: str, port: int) -> str | None:
    """None when a box with `lists` may reach host:port by its lists, else why not. The
    addresses a name resolves to are vetted apart (`vet`)."""
    if not valid_host(host):
        return "malformed host"
    canon = canonical_host(host) or host
    for entry in lists.denied:
        if matches(canon, port, entry):
            return "denied by the deny list"
    for entry in lists.allowed:
        if matches(canon, port, entry):
            return None
    return "host is not on the allow list"


def is_loopback_name(host: str) -> bool:
    h = host.lower().removesuffix(".")
    return h == "localhost" or h.endswith(".localhost")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one delivers to: mapped and compatible (`::ffff:0:0/96`,
    `::/96`), translated (`::ffff:0:0:0/96`), NAT64's well-known /96 and 6to4."""
    if ip.version != 6:
        return None
    g = [(int(ip) >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    low = ipaddress.IPv4Address((g[6] << 16) | g[7])
    if g[0] == 0x2002:
        return ipaddress.IPv4Address((g[1] << 16) | g[2])
    if g[0] == 0x64 and g[1] == 0xFF9B and not any(g[2:6]):
        return low
    if not any(g[0:5]) and g[5] in (0, 0xFFFF):
        return low
    if not any(g[0:4]) and g[4] == 0xFFFF and g[5] == 0:
        return low
    return None


def _in(rules: Iterable[tuple[Network, int | None]], ip: IPAddress, port: int) -> bool:
    return any(
        (p is None or p == port) and ip.version == net.version and ip in net for net, p in rules
    )


_CLASSES = tuple(
    (why, tuple((n, None) for r in ranges if (n := _network(r)) is not None))
    for why, ranges in DENIED_CLASSES
)


def vet(lists: Lists, host: str, port: int, address: str, local: Iterable[str]) -> str | None:
    """None when `address`, one `host` resolved to, may be dialled for host:port; else why
    not. `host`: as canonical_host spells it; `local`: this machine's interface addresses."""
    if _ip(_unbracket(host)) is not None:
        return None  # an IP literal was judged by the lists themselves
    ip = _ip(_drop_zone(address))
    if ip is None:
        return "an unparsable address"
    if ip.version == 6:
        assert isinstance(ip, ipaddress.IPv6Address)
        ip = ip.ipv4_mapped or ip
    v4 = embedded_ipv4(ip)

    def hit(rules: Iterable[tuple[Network, int | None]]) -> bool:
        rules = tuple(rules)
        return _in(rules, ip, port) or (v4 is not None and _in(rules, v4, port))

    if hit(lists.denied_ips):
        return "a deny-listed address"
    if _in(lists.allowed_ips, ip, port):
        return None
    if is_loopback_name(host):
        return None if ip.is_loopback else "a non-loopback address"
    for why, rules in _CLASSES:
        if hit(rules):
            return why
    mine = tuple((n, None) for a in local if (n := _network(_drop_zone(a))) is not None)
    if _in(mine, ip, port) or (v4 is not None and _in(mine, v4, port)):
        return "one of this host's addresses"
    return None


def local_addresses(proc: str = "/proc") -> list[str]:
    """This machine's interface addresses, from the kernel's tables (Linux)."""
    out: list[str] = []
    try:
        with open(f"{proc}/net/fib_trie", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for prev, line in itertools.pairwise(lines):
        if line.strip() == "/32 host LOCAL":
            out.append(prev.strip().removeprefix("|-- "))
    try:
        with open(f"{proc}/net/if_inet6", encoding="ascii") as f:
            for row in f:
                raw = row.split()[0]
                out.append(str(ipaddress.IPv6Address(int(raw, 16))))
    except (OSError, ValueError, IndexError):
        pass
    return list(dict.fromkeys(out))
