"""apps/notifications/webhooks.py: which URLs a webhook may call, the signature, and one POST to a real receiver."""

import hashlib
import hmac

import pytest

from apps.notifications.webhooks import UnsafeWebhookUrl, address_refusal, check_url, post_signed, signature
from tests.apps.notifications.conftest import PUBLIC_URL

REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.1.2.3:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://10.0.0.5/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fd00::1]/hook", "private"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:10.1.1.1]/hook", "private"),
    ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://100.64.0.1/hook", "private"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one number
    ("http://localhost:8000/hook", "loopback"),
]


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_urls_into_the_platforms_network_are_refused(url, kind):
    with pytest.raises(UnsafeWebhookUrl, match=f"is not public: {kind}"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.215.14/hook", "Use an http:// or https:// URL."),
        ("file:///etc/passwd", "Use an http:// or https:// URL."),
        ("http://user:pass@93.184.215.14/hook", "Credentials in the URL are not allowed"),
        ("https://user@93.184.215.14/hook", "Credentials in the URL are not allowed"),
        ("https:///hook", "The URL has no host."),
        ("https://93.184.215.14:99999/hook", "The URL is not valid."),
        ("https://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_other_bad_urls_are_refused_with_the_reason(url, message):
    with pytest.raises(UnsafeWebhookUrl, match=message.replace("?", r"\?").replace(".", r"\.")):
        check_url(url, allow_private=False)


def test_a_public_address_is_allowed_and_kept_for_the_connection():
    target = check_url(PUBLIC_URL, allow_private=False)

    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "93.184.215.14",
        443,
        "/hooks/mlplatform",
    )
    assert target.addresses == ("93.184.215.14",)


def test_the_switch_allows_a_local_address_but_not_other_schemes():
    assert check_url("http://127.0.0.1:9/x?a=1", allow_private=True).path == "/x?a=1"
    with pytest.raises(UnsafeWebhookUrl):
        check_url("ftp://127.0.0.1/x", allow_private=True)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:8.8.8.8"])
def test_public_addresses_have_no_refusal(address):
    assert address_refusal(address) == ""


def test_signature_is_githubs_sha256_hmac_of_the_raw_body():
    body = b'{"event":"registry.stage_changed"}'

    assert signature("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_post_signed_sends_the_body_signature_and_headers_to_the_checked_address(receiver, allow_private):
    body = b'{"hello":"world"}'

    response = post_signed(receiver.url, secret="k", body=body, headers={"X-MLPlatform-Event": "registry.x"})

    assert response.ok and response.status_code == 204 and response.error == ""
    [request] = receiver.requests
    assert request.path == "/hook?team=ml"
    assert request.body == body
    assert request.headers["X-MLPlatform-Signature"] == signature("k", body)
    assert request.headers["X-MLPlatform-Event"] == "registry.x"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Host"] == receiver.url.split("/")[2]  # the URL's host, not a second resolution


def test_post_signed_does_not_follow_redirects(receiver, allow_private):
    receiver.statuses = [302]

    response = post_signed(receiver.url, secret="k", body=b"{}", headers={})

    assert not response.ok
    assert response.status_code == 302
    assert "redirects are not followed" in response.error
    assert len(receiver.requests) == 1


def test_post_signed_refuses_a_private_address_without_the_switch(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    response = post_signed(receiver.url, secret="k", body=b"{}", headers={})

    assert response.status_code is None
    assert response.error.startswith("Refused: The URL points at the platform's own network")
    assert receiver.requests == []


def test_post_signed_reports_a_closed_port_as_an_error(allow_private):
    response = post_signed("http://127.0.0.1:1/hook", secret="k", body=b"{}", headers={})

    assert not response.ok
    assert response.status_code is None
    assert "ConnectionRefusedError" in response.error
