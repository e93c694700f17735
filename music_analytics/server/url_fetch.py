"""Fetching an append's file from a URL without letting callers reach what they should not.

Rules (settings `MUSIC_ANALYTICS_APPEND_URL_HOSTS`, `_MAX_MB`, `_TIMEOUT_SECONDS`):
- only `http` and `https`, to a host named in the allow-list (empty by default: every URL is
  refused, naming the setting);
- the host's addresses are resolved once and checked: a private, loopback, link-local,
  multicast or reserved address is refused unless that address itself is in the allow-list
  (`127.0.0.1` for a local test server). The connection goes to the checked address (the
  Host header and TLS name stay the host's), so a second DNS answer cannot point elsewhere;
- redirects are followed (at most MAX_REDIRECTS) only to the same scheme, host and port;
- the body is read up to the size cap and the time cap (the whole download, not per read).
Every refusal is a FetchError whose message names the problem and the setting to change.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
HOSTS_SETTING = "MUSIC_ANALYTICS_APPEND_URL_HOSTS"


class FetchError(ValueError):
    """The URL may not be fetched, or its download failed; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UrlPolicy:
    hosts: tuple[str, ...]
    max_bytes: int
    timeout_seconds: float


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent


def check_url(url: str, policy: UrlPolicy) -> Target:
    """The URL's parts when its scheme and host are allowed (no DNS yet); FetchError if not."""
    if not policy.hosts:
        raise FetchError(
            f"appending from a URL is off: set {HOSTS_SETTING} to the hosts the server may "
            "fetch from (comma-separated)",
            403,
        )
    if not isinstance(url, str) or len(url) > 4096:
        raise FetchError("parameter 'url' is missing or over 4096 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"parameter 'url' is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"parameter 'url': scheme {scheme[:20]!r} is not allowed (http, https)")
    host = (parts.hostname or "").lower()
    if not host:
        raise FetchError("parameter 'url' has no host")
    if parts.username or parts.password:
        raise FetchError("parameter 'url' holds credentials: give a URL without user:password@")
    if host not in policy.hosts:
        raise FetchError(
            f"parameter 'url': host {host[:100]!r} is not in {HOSTS_SETTING}; add it there to "
            "allow it",
            403,
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _is_public(address: ipaddress._BaseAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(target: Target, policy: UrlPolicy) -> str:
    """The address to connect to: the first of the host's addresses, each checked."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"parameter 'url': host {target.host!r} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if not _is_public(address) and str(address) not in policy.hosts:
            raise FetchError(
                f"parameter 'url': host {target.host!r} resolves to the non-public address "
                f"{address}; the server fetches only public addresses unless that address is "
                f"in {HOSTS_SETTING}",
                403,
            )
    if not addresses:
        raise FetchError(f"parameter 'url': host {target.host!r} has no address")
    return str(addresses[0])


def fetch(url: str, policy: UrlPolicy) -> bytes:
    """The URL's body, by the module's rules; FetchError for any refusal or failure."""
    deadline = time.monotonic() + policy.timeout_seconds
    target = check_url(url, policy)
    for _ in range(MAX_REDIRECTS + 1):
        response = _request(target, resolve(target, policy), policy, deadline)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = urljoin(
                    f"{target.scheme}://{target.host}:{target.port}{target.path}",
                    response.headers.get("location", ""),
                )
                parts = urlsplit(location)
                try:
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                except ValueError:
                    port = -1
                if (parts.scheme, (parts.hostname or "").lower(), port) != (
                    target.scheme,
                    target.host,
                    target.port,
                ):
                    raise FetchError(
                        f"parameter 'url': {target.host} redirects to another host, port or "
                        f"scheme ({parts.scheme}://{parts.hostname}:{port}), which is not "
                        "followed"
                    )
                target = check_url(location, policy)
                continue
            if response.status != 200:
                raise FetchError(f"parameter 'url': the server answered HTTP {response.status}")
            return _read_capped(response, policy, deadline)
        finally:
            response.release_conn()
    raise FetchError(f"parameter 'url': more than {MAX_REDIRECTS} redirects")


def _request(target: Target, address: str, policy: UrlPolicy, deadline: float):
    remaining = max(0.1, deadline - time.monotonic())
    timeout = urllib3.Timeout(connect=min(remaining, 10.0), read=min(remaining, 30.0))
    options = dict(timeout=timeout, retries=False, maxsize=1)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, **options)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    try:
        return pool.urlopen(
            "GET",
            target.path,
            headers={
                "Host": host_header,
                "Accept-Encoding": "identity",
                "User-Agent": "music-analytics",
            },
            redirect=False,
            preload_content=False,
            decode_content=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(
            f"parameter 'url': fetching from {target.host} failed: {exc}", 502
        ) from None


def _read_capped(response, policy: UrlPolicy, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(
            f"parameter 'url': the file is {declared} bytes, over the "
            f"{policy.max_bytes} of MUSIC_ANALYTICS_APPEND_URL_MAX_MB",
            413,
        )
    body = bytearray()
    try:
        while chunk := response.read1(CHUNK):
            body += chunk
            if len(body) > policy.max_bytes:
                raise FetchError(
                    f"parameter 'url': the file is over the {policy.max_bytes} bytes of "
                    "MUSIC_ANALYTICS_APPEND_URL_MAX_MB",
                    413,
                )
            if time.monotonic() > deadline:
                raise FetchError(
                    f"parameter 'url': the download took over {policy.timeout_seconds:g} s "
                    "(MUSIC_ANALYTICS_APPEND_URL_TIMEOUT_SECONDS)",
                    408,
                )
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"parameter 'url': the download failed: {exc}", 502) from None
    return bytes(body)
