"""Audit export: the portal's streamed, digested CSV export against the least any CSV dump of the same rows costs.

Reference: one pass over the same rows with csv.writer into a SHA-256, nothing else. The export makes two passes
(one for the digest header, one to stream; docs/adr/0002) and neutralises formula cells, so a ratio near 2 is the
expected price of its guarantees; a ratio well above that is a regression. Peak Python memory of both is measured
with tracemalloc: the export must stay flat however many events there are.

Runs in a throwaway test database (the configured one is never touched):
    python bench/audit_export.py [--events 100000]
Last line: {"events", "export_s", "reference_s", "ratio", "export_peak_mb", "reference_peak_mb", "body_mb", "database"}
"""

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, setup_test_environment, teardown_databases  # noqa: E402

from apps.accounts.choices import Role  # noqa: E402
from apps.audit.export import EXPORT_COLUMNS as COLUMNS  # noqa: E402
from apps.audit.models import AuditEvent  # noqa: E402
from tests.apps.audit.chain_helpers import build_chain  # noqa: E402
from tests.factories import UserFactory  # noqa: E402


def measure(run) -> tuple[float, float, int]:
    """(seconds, peak MiB, bytes) of one run."""
    tracemalloc.start()
    started = time.perf_counter()
    size = run()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, size


def reference_dump() -> int:
    sha, size = hashlib.sha256(), 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in AuditEvent.objects.order_by("seq").values_list(*COLUMNS).iterator(chunk_size=2000):
        writer.writerow(json.dumps(v) if isinstance(v, dict | list) else v for v in row)
        data = buffer.getvalue().encode()
        sha.update(data)
        size += len(data)
        buffer.seek(0)
        buffer.truncate()
    return size


def portal_export(client: Client) -> int:
    response = client.get("/audit/export/", {"format": "csv"})
    assert response.status_code == 200, response.status_code
    size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()

    setup_test_environment()
    if connection.vendor != "sqlite":  # SQLite's test database lives in memory; name the others apart from pytest's
        connection.settings_dict["TEST"]["NAME"] = f"bench_{os.getpid()}"
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        officer = UserFactory(role=Role.COMPLIANCE, username="bench-compliance")
        build_chain(args.events, actor=officer)
        client = Client()
        client.force_login(officer)
        reference_dump()  # warm the database's cache so neither side pays for cold pages
        reference_s, reference_peak, _ = measure(reference_dump)
        export_s, export_peak, body = measure(lambda: portal_export(client))
        figures = {
            "events": args.events,
            "export_s": round(export_s, 3),
            "reference_s": round(reference_s, 3),
            "ratio": round(export_s / reference_s, 2),
            "export_peak_mb": round(export_peak, 1),
            "reference_peak_mb": round(reference_peak, 1),
            "body_mb": round(body / 2**20, 1),
            "database": connection.vendor,
        }
        print(f"export of {args.events} events: {export_s:.2f} s vs reference {reference_s:.2f} s "
              f"(x{figures['ratio']}), peak {export_peak:.1f} MiB vs {reference_peak:.1f} MiB")  # fmt: skip
        print(json.dumps(figures))
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
