import hashlib
import time
import tracemalloc

from django.urls import reverse

from apps.audit.models import AuditEvent
from tests.apps.audit.chain_helpers import build_chain

EVENTS = 100_000
PEAK_LIMIT = 30 * 1024 * 1024


def test_export_of_100k_events_streams_in_bounded_memory(api_client_as, platform_compliance):
    started = time.monotonic()
    assert build_chain(EVENTS) == EVENTS
    client = api_client_as(platform_compliance)
    sha = hashlib.sha256()
    lines = size = 0

    tracemalloc.start()
    try:
        response = client.get(reverse("audit-event-export"), {"format": "csv"})  # includes the digest pass
        for chunk in response.streaming_content:
            sha.update(chunk)
            lines += chunk.count(b"\r\n")
            size += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 200
    assert lines - 1 == EVENTS  # minus the header row
    assert response["X-Audit-Event-Count"] == str(EVENTS)
    assert response["X-Export-SHA256"] == sha.hexdigest()
    assert response["Content-Length"] == str(size)
    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert peak < size / 2, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB body: the body was buffered"
    assert AuditEvent.objects.filter(action="audit.export").values_list("after__count", flat=True).get() == EVENTS
    assert time.monotonic() - started < 120
