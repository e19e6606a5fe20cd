"""A tiny LightGBM pipeline trained on generated data, signed into a local artifact store, and an in-process ASGI
client (httpx is not installed: the app is called as the ASGI callable it is)."""

import asyncio
import functools
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from workers.ml.training.artifacts import dump_model, sign
from workers.ml.training.preparation import build_pipeline
from workers.ml.training.signature import input_signature
from workers.ml.training.spec import ExperimentSpec
from workers.serving.app import create_app
from workers.serving.config import Limits, Settings, parse_deployment
from workers.storage.local import LocalArtifactStore

KEY = b"serving-test-key"
KINDS = {"age": "numeric", "income": "numeric", "colour": "categorical", "member": "boolean"}
ROW = {"age": 41.0, "income": 0.5, "colour": "red", "member": True}


def training_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "income": rng.normal(0, 1, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "member": rng.random(rows) < 0.5,
        }
    )
    signal = (frame["age"] - 40) / 10 + frame["income"] + (frame["colour"] == "red") * 1.5
    frame["target"] = np.where(signal + rng.normal(0, 0.5, rows) > 0.5, "yes", "no")
    frame.loc[:20, "income"] = np.nan  # income may be missing: its signature column is nullable
    return frame


@functools.cache
def train(seed: int = 0):
    """Trained once per seed and test session: the tests only dump it."""
    frame = training_frame(seed=seed)
    spec = ExperimentSpec(
        problem_type="binary",
        target="target",
        features=tuple(KINDS),
        feature_kinds=dict(KINDS),
        algorithms=("lightgbm",),
        primary_metric="roc_auc",
        seed=seed,
    )
    pipeline = build_pipeline(spec, {"n_estimators": 15})
    pipeline.fit(frame[list(KINDS)], frame["target"])
    return pipeline, input_signature(frame, spec)


@dataclass
class Artifacts:
    store: LocalArtifactStore
    entries: dict[str, dict] = field(default_factory=dict)

    def publish(self, name: str, version: str, *, seed: int = 0, key: bytes = KEY) -> dict:
        pipeline, signature = train(seed)
        data = dump_model(pipeline)
        artifact_key = f"models/{name}/v{version}/model.joblib"
        stored = self.store.put_bytes(artifact_key, data)
        entry = {
            "name": name,
            "version": version,
            "artifact_store": self.store.uri,
            "artifact_key": artifact_key,
            "sha256": stored.sha256,
            "signature": sign(data, key),
            "input_signature": signature,
            "problem_type": "binary",
            "algorithm": "lightgbm",
        }
        self.entries[f"{name}:{version}"] = entry
        return entry


@pytest.fixture
def artifacts(tmp_path):
    """Publishes versions into a store in tmp_path."""
    return Artifacts(store=LocalArtifactStore(tmp_path / "artifacts"))


def settings_for(entries: list[dict], log_dir, **limits) -> Settings:
    return Settings(
        deployment=parse_deployment({"models": entries}),
        signing_key=KEY,
        log_dir=log_dir,
        limits=Limits(**limits),
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class AsgiClient:
    """Sends one HTTP request at a time through the ASGI callable, inside a running lifespan."""

    def __init__(self, app):
        self.app = app

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body=None,
        body: bytes | None = None,
        headers=None,
        send_length=True,
        client: tuple[str, int] | None = None,
    ):
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        body = body or b""
        raw_headers = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
        if send_length and "content-length" not in (headers or {}):
            raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "method": method, "path": path, "headers": raw_headers, "query_string": b""}
        if client is not None:
            scope["client"] = client
        chunks = [body[i : i + 1024] for i in range(0, len(body), 1024)] or [b""]
        messages = [
            {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
            for index, chunk in enumerate(chunks)
        ]
        sent = []

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await self.app(scope, receive, send)
        start = sent[0]
        return Answer(
            status=start["status"],
            headers={name.decode(): value.decode() for name, value in start["headers"]},
            body=b"".join(message.get("body", b"") for message in sent[1:]),
        )

    async def get(self, path: str, **kwargs):
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, json_body=None, **kwargs):
        return await self.request("POST", path, json_body=json_body, **kwargs)


class Running:
    """An app inside its lifespan: `async with Running(app) as client:`."""

    def __init__(self, app):
        self.app = app

    async def __aenter__(self) -> AsgiClient:
        self._queue: asyncio.Queue = asyncio.Queue()
        self._sent: list[str] = []

        async def send(message):
            self._sent.append(message["type"])

        self._task = asyncio.create_task(self.app({"type": "lifespan"}, self._queue.get, send))
        await self._queue.put({"type": "lifespan.startup"})
        while "lifespan.startup.complete" not in self._sent:
            await asyncio.sleep(0)
        return AsgiClient(self.app)

    async def __aexit__(self, *exc) -> None:
        await self._queue.put({"type": "lifespan.shutdown"})
        await self._task


@pytest.fixture
def serve(tmp_path):
    """serve(entries, **limits) -> the ServingApp for those deployment entries, logging under tmp_path/log."""

    def make(entries: list[dict], **limits):
        return create_app(settings_for(entries, tmp_path / "log", **limits))

    return make


def v2_body(row: dict = ROW, **extra) -> dict:
    datatypes = {"age": "FP64", "income": "FP64", "colour": "BYTES", "member": "BOOL"}
    inputs = [
        {"name": name, "shape": [1], "datatype": datatypes.get(name, "FP64"), "data": [value]}
        for name, value in row.items()
    ]
    return {"inputs": inputs, **extra}
