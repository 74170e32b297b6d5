"""Where webhooks may go: no loopback, private, link-local or metadata addresses unless the
operator allows them (server-side request forgery, SSRF).

Why two checks: a tenant chooses a watch's webhook URL, and the server then POSTs to it from
inside the operator's network. Checking the URL when the watch is created gives the tenant a
clear error (``webhook_url_forbidden``); but a name can resolve to a public address then and to
``127.0.0.1`` or ``169.254.169.254`` later (DNS rebinding), so the address is checked again on
every connection, after resolution, by the HTTP client's own network backend: the socket is only
ever opened to an address that passed. Redirects are never followed (a 3xx is a failed attempt),
and proxies from the environment are not used, so nothing reroutes a request past the check.

Allowed: globally routable unicast addresses, plus what ``alerts.webhook_allow_private`` (all)
or ``alerts.webhook_allow_hosts`` (host names, addresses, CIDR networks) lets through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from eventvstream.config import AlertSettings
from eventvstream.errors import EvsError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CODE = "webhook_url_forbidden"
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(httpcore.ConnectError):
    """A connection the policy refused; final (retrying cannot make the address public)."""


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any: checked
    instead, so ``::ffff:127.0.0.1`` is loopback."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local (the cloud metadata
    service), shared (CGNAT), reserved, unspecified or multicast."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not address.is_multicast


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class WebhookPolicy:
    """The operator's rule for webhook destinations (``alerts.webhook_allow_*``)."""

    def __init__(self, allow_private: bool = False, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_hosts:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.names.add(entry.strip().lower().rstrip("."))

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> WebhookPolicy:
        return cls(settings.webhook_allow_private, settings.webhook_allow_hosts)

    def address_allowed(self, address: IPAddress) -> bool:
        if self.allow_private or is_public(address):
            return True
        inner = embedded_ipv4(address)
        return any(a in n for a in (address, inner) if a is not None for n in self.networks)

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a connection may use; raises :class:`TargetRefused` when
        any of them is not allowed (a name that also resolves to a private address is refused
        whole: which record a client picks is not ours to predict)."""
        if self.name_allowed(host) or self.allow_private:
            return [host]
        literal = _parse_address(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
            found = list(
                dict.fromkeys(ipaddress.ip_address(i[4][0].split("%", 1)[0]) for i in infos)
            )
        refused = [a for a in found if not self.address_allowed(a)]
        if refused:
            raise TargetRefused(
                f"{host!r} resolves to a non-public address ({refused[0]}); "
                "not allowed by alerts.webhook_allow_private / webhook_allow_hosts"
            )
        return [str(a) for a in found]

    def check_url(self, url: str) -> None:
        """At watch creation: refuse a URL whose host is (or now resolves to) a non-public
        address. A name that does not resolve yet is accepted; the send-time check still
        applies to whatever it resolves to later."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise EvsError("webhook url has an invalid port", code="invalid_request") from exc
        try:
            self.resolve(host, port)
        except TargetRefused as exc:
            raise EvsError(
                f"webhook url host {host!r} is a loopback, private, link-local or otherwise "
                "non-public address; the server's operator can allow it "
                "(alerts.webhook_allow_private or alerts.webhook_allow_hosts)",
                code=CODE,
            ) from exc
        except httpcore.ConnectError:
            pass  # does not resolve now: checked again on every delivery


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, resolving names itself and connecting only to allowed
    addresses (the TLS layer above still verifies the certificate against the URL's name)."""

    def __init__(self, policy: WebhookPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.policy.resolve(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host!r}")


def guarded_client(policy: WebhookPolicy, timeout_s: float) -> httpx.Client:
    """An httpx client whose every connection passes ``policy``; no redirects, no proxies."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx does not take a network backend; its pool is rebuilt with one (same defaults).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_GuardedBackend(policy),
    )
    return httpx.Client(
        transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
    )


def refused(exc: BaseException) -> TargetRefused | None:
    """The policy refusal behind an httpx error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
