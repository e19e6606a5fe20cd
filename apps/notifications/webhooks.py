"""Webhook URLs that cannot reach the platform's own network, and one signed POST to such a URL.

Server-side request forgery: a webhook URL is chosen by a person but fetched by the worker, from inside the network.
So the host is resolved and every address it resolves to must be public (not loopback, link-local, private, shared,
multicast, reserved or unspecified, IPv4 or IPv6, including IPv4 addresses embedded in IPv6 ones); the check runs when
the webhook is saved and again before every attempt (DNS answers change), and the connection goes to an address that
was checked, never to a second resolution of the name (DNS rebinding). The Host header and the TLS server name stay
the URL's host, so virtual hosts and certificate checks work as usual. Redirects are not followed, proxies are not
used, and the response body is read only up to a few kilobytes.

docs/adr/0009-notifications.md explains the choices.
"""

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

ALLOWED_SCHEMES = {"http": 80, "https": 443}
TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 4096
USER_AGENT = "mlplatform-webhooks/1"
# IPv6 prefixes that carry an IPv4 address a gateway may forward to: NAT64 (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not marked private by the ipaddress module


class UnsafeWebhookUrl(ValueError):
    """The URL may not be called: a sentence for the person who entered it."""


@dataclass(frozen=True)
class Target:
    """A URL split into what the request needs, with the addresses that were checked."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Response:
    status_code: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def private_addresses_allowed() -> bool:
    """The test/development switch (settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES); production refuses to start with it."""
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False))


def address_refusal(address: str) -> str:
    """Why a webhook may not connect to `address`, or "" when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        embedded = ip.ipv4_mapped or ip.sixtofour or nat64
        if embedded is not None:
            return address_refusal(str(embedded))
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)),
        ("not global", not ip.is_global),
    )
    for kind, matches in checks:
        if matches:
            return f"{address} is not public: {kind}"
    return ""


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"The host “{host}” cannot be resolved.") from exc
    addresses = tuple(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise UnsafeWebhookUrl(f"The host “{host}” has no address.")
    return addresses


def check_url(url: str, *, allow_private: bool | None = None) -> Target:
    """The URL as a Target whose every address is allowed, or UnsafeWebhookUrl saying why not."""
    if allow_private is None:
        allow_private = private_addresses_allowed()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeWebhookUrl("The URL is not valid.") from exc
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UnsafeWebhookUrl("Use an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookUrl("Credentials in the URL are not allowed; the signature authenticates the platform.")
    if not parts.hostname:
        raise UnsafeWebhookUrl("The URL has no host.")
    port = port or ALLOWED_SCHEMES[parts.scheme]
    addresses = _resolve(parts.hostname, port)
    if not allow_private:
        for address in addresses:
            refusal = address_refusal(address)
            if refusal:
                raise UnsafeWebhookUrl(
                    f"The URL points at the platform's own network ({parts.hostname}: {refusal}); webhooks may only "
                    "call public addresses."
                )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path, addresses=addresses)


def signature(secret: str, body: bytes) -> str:
    """The X-MLPlatform-Signature header: "sha256=" + hex HMAC-SHA256 of the raw body (GitHub's convention)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _pinned(connection_class):
    """An http.client connection class that connects to `address` (checked) instead of resolving `host` again."""

    class Pinned(connection_class):
        def __init__(self, host, port, address, **kwargs):
            super().__init__(host, port, **kwargs)
            self._checked_address = address
            self._create_connection = self._connect_checked

        def _connect_checked(self, _address, timeout, source_address=None):
            return socket.create_connection((self._checked_address, self.port), timeout, source_address)

    return Pinned


_PinnedHTTP = _pinned(http.client.HTTPConnection)
_PinnedHTTPS = _pinned(http.client.HTTPSConnection)


def _connection(target: Target, address: str):
    if target.scheme == "https":
        return _PinnedHTTPS(
            target.host, target.port, address, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    return _PinnedHTTP(target.host, target.port, address, timeout=TIMEOUT_SECONDS)


def _exchange(connection, target: Target, body: bytes, headers: dict[str, str]) -> Response:
    connection.request("POST", target.path, body=body, headers=headers)
    answer = connection.getresponse()
    text = answer.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
    if 200 <= answer.status < 300:
        return Response(answer.status)
    if 300 <= answer.status < 400:
        return Response(answer.status, f"HTTP {answer.status}: redirects are not followed.")
    return Response(answer.status, f"HTTP {answer.status}: {text[:500]}".strip())


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def post_signed(url: str, *, secret: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url` with the signature and `headers`, after checking the URL again. Never raises for what the
    receiver or the network does: the outcome is the Response (status code, or an error sentence)."""
    try:
        target = check_url(url)
    except UnsafeWebhookUrl as exc:
        return Response(None, f"Refused: {exc}")
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-MLPlatform-Signature": signature(secret, body),
        **headers,
    }
    error = "No address answered."
    for address in target.addresses:
        connection = _connection(target, address)
        try:
            try:
                connection.connect()
            except OSError as exc:  # this address does not answer: try the next one (nothing was sent yet)
                error = _error_text(exc)
                continue
            return _exchange(connection, target, body, all_headers)
        except (OSError, http.client.HTTPException) as exc:
            return Response(None, _error_text(exc))
        finally:
            connection.close()
    return Response(None, error)
