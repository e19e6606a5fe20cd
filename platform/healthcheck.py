"""Container health check: GET /healthz on the local portal, as the load balancer would, and exit 0 when it is OK.

In production the portal redirects plain HTTP to HTTPS and answers only the hosts in ALLOWED_HOSTS, so the check
speaks as the TLS-terminating proxy does: it sends `X-Forwarded-Proto: https` and the first allowed host.

Usage: python platform/healthcheck.py [URL]   (default http://127.0.0.1:8000/healthz). Standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def host_header() -> str | None:
    hosts = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",") if host.strip()]
    for host in hosts:
        if host != "*":
            return host.lstrip(".")  # ".example.com" allows every subdomain and the domain itself
    return None


def check(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    headers = {"X-Forwarded-Proto": "https", "Accept": "application/json"}
    host = host_header()
    if host:
        headers["Host"] = host
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (an http URL we were given, on purpose)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(4096)
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"
    try:
        healthy = status == 200 and json.loads(body) == {"status": "ok"}
    except ValueError:
        healthy = False
    return healthy, f"{url}: HTTP {status} {body[:200]!r}"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    healthy, detail = check(url)
    print(("healthy " if healthy else "unhealthy ") + detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
