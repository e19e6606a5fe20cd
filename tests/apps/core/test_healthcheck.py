"""platform/healthcheck.py, the containers' health check: it asks /healthz as the TLS proxy would."""

import importlib.util
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "platform" / "healthcheck.py"


def load_healthcheck():
    # `platform` is not a package (and would shadow the standard library's module), so load the file by path.
    spec = importlib.util.spec_from_file_location("mlplatform_healthcheck", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = load_healthcheck()


@pytest.fixture
def fake_portal():
    """A loopback HTTP server that records request headers and answers with the configured status and body."""
    state = {"status": 200, "body": json.dumps({"status": "ok"}).encode(), "headers": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["headers"] = dict(self.headers)
            state["path"] = self.path
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/healthz"
    yield state
    server.shutdown()
    server.server_close()


def test_healthy_portal_passes_and_the_check_speaks_as_the_tls_proxy(fake_portal, monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "portal.example.com,other.example.com")

    healthy, detail = healthcheck.check(fake_portal["url"])

    assert healthy is True
    assert detail.startswith(f"{fake_portal['url']}: HTTP 200")
    assert fake_portal["path"] == "/healthz"
    assert fake_portal["headers"]["X-Forwarded-Proto"] == "https"
    assert fake_portal["headers"]["Host"] == "portal.example.com"


@pytest.mark.parametrize(
    ("allowed_hosts", "host"), [("*,portal.example.com", "portal.example.com"), (".example.com", "example.com")]
)
def test_host_header_skips_wildcards_and_strips_a_leading_dot(monkeypatch, allowed_hosts, host):
    monkeypatch.setenv("ALLOWED_HOSTS", allowed_hosts)

    assert healthcheck.host_header() == host


def test_without_allowed_hosts_the_url_host_is_sent(fake_portal, monkeypatch):
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)

    healthcheck.check(fake_portal["url"])

    assert fake_portal["headers"]["Host"] == fake_portal["url"].split("/")[2]


def test_an_error_status_is_unhealthy(fake_portal):
    fake_portal["status"] = 500

    healthy, detail = healthcheck.check(fake_portal["url"])

    assert healthy is False
    assert "HTTP Error 500" in detail


def test_a_body_other_than_status_ok_is_unhealthy(fake_portal):
    fake_portal["body"] = b"<html>maintenance</html>"

    assert healthcheck.check(fake_portal["url"])[0] is False


def test_nothing_listening_is_unhealthy_and_exits_1():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "http://127.0.0.1:9/healthz"], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 1
    assert result.stdout.startswith("unhealthy http://127.0.0.1:9/healthz")


def test_the_real_portal_healthz_passes_the_check(live_server, monkeypatch):
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)

    healthy, detail = healthcheck.check(f"{live_server.url}/healthz")

    assert healthy is True, detail
