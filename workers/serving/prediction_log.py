"""Prediction logging off the request path: requests append to an in-memory queue, a background task drains it in
batches into a PredictionSink.

A record: {"prediction_id", "model", "version", "variant", "shadow", "inputs": {column: value}, "outputs": {...},
"latency_ms", "time"}, plus "shadow_of" (the live prediction id it copies) on a shadow's record. `variant` is the
traffic route that chose the version (workers.serving.routing), null when the request named the version itself;
`shadow` is true for a shadow copy's answer, which was logged but never returned.
The queue is bounded: when the sink cannot keep up, the oldest records are dropped and counted (the
mlp_serving_prediction_log_dropped_total metric) rather than letting memory grow or requests wait.

JsonLinesSink writes `predictions-<UTC time>-<pid>-<n>.jsonl.part` in its folder, flushed after every batch (the
drain runs at least once a second) and renamed to `.jsonl` when it rotates (by size or age) or on shutdown, so an
importer takes only complete `.jsonl` files and never reads a half-written line.
"""

import asyncio
import contextlib
import json
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Any

PART_SUFFIX = ".jsonl.part"


class PredictionSink(ABC):
    @abstractmethod
    def write(self, records: list[dict[str, Any]]) -> None:
        """Persist a batch (called from a worker thread, one batch at a time)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finish what was written."""


class JsonLinesSink(PredictionSink):
    def __init__(self, folder: Path, *, rotate_bytes: int, rotate_seconds: float):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._file = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._sequence = 0

    def _open(self) -> None:
        self._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._path = self.folder / f"predictions-{stamp}-{os.getpid()}-{self._sequence}{PART_SUFFIX}"
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across batches
        self._opened_at = time.monotonic()

    def _finish(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._path.rename(self._path.with_name(self._path.name.removesuffix(".part")))
        self._file = self._path = None

    def _due(self) -> bool:
        too_old = time.monotonic() - self._opened_at >= self.rotate_seconds
        return too_old or self._file.tell() >= self.rotate_bytes

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._file is not None and self._due():
            self._finish()
        if self._file is None:
            self._open()
        self._file.write("".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records))
        self._file.flush()

    def close(self) -> None:
        self._finish()


class PredictionLogger:
    def __init__(self, sink: PredictionSink, *, max_queue: int = 100_000, interval: float = 0.25):
        self.sink = sink
        self.interval = interval  # seconds between drains; well under the one-second promise
        self.dropped = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._max_queue = max_queue
        self._task: asyncio.Task | None = None

    def log(self, record: dict[str, Any]) -> None:
        """The request path's only cost: an append."""
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(record)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.drain()

    async def drain(self) -> None:
        batch = []
        while self._queue:
            batch.append(self._queue.popleft())
        if batch:
            await asyncio.to_thread(self.sink.write, batch)

    async def stop(self) -> None:
        """Write what is queued and close the sink."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.drain()
        await asyncio.to_thread(self.sink.close)
