"""Run a coroutine to completion from a synchronous test, whatever else runs in the session.

Playwright's sync API (the browser tests, session-scoped) keeps an event loop running in the main thread for the
rest of the session, and `asyncio.run` refuses to start inside a running loop. A thread of its own has no loop.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor


def run_async(coroutine):
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-async") as pool:
        return pool.submit(asyncio.run, coroutine).result()
