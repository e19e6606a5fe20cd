"""The model server: a plain ASGI application (no web framework, so no per-request overhead we did not choose).

Start it with `uvicorn workers.serving.app:app`; the configuration comes from the environment on first use
(workers.serving.config). Routes:
    GET  /v2, /v2/health/live, /v2/health/ready                 Open Inference Protocol V2: server
    GET  /v2/models/<name>[/versions/<v>][/ready]               model metadata and readiness
    POST /v2/models/<name>[/versions/<v>]/infer                 predictions (workers.serving.protocols)
    POST /v2/models/<name>[/versions/<v>]/explain               SHAP contributions per row, same body as infer
    GET  /ping, /health; POST /invocations                      MLflow scoring server (the default version)
    GET  /metrics                                               Prometheus text
    POST /admin/reload                                          re-read the deployment file (loopback + token)
Requests that name no version of the endpoint's model (V2 infer without /versions/<v>, MLflow /invocations) are
routed by the deployment's traffic policy (workers.serving.routing), and copied to its shadow version if it has one;
for another model, a name without a version means the version of that name listed last in the deployment file.

Every prediction answer carries one prediction id per row (in the body and, comma-separated, in the
X-Prediction-Id header) and the answering version (body and X-Model-Name / X-Model-Version). Predictions run on the
event loop (a single-row prediction is shorter than a thread hand-off); explanations, which can take long, in a
thread. Logging is an append to an in-memory queue (workers.serving.prediction_log).
"""

import asyncio
import hmac
import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workers.serving.config import (
    ConfigError,
    Limits,
    Settings,
    check_traffic_ready,
    load_deployment,
    settings_from_env,
)
from workers.serving.features import OnlineFeatures, online_features
from workers.serving.metrics import Metrics
from workers.serving.prediction_log import JsonLinesSink, PredictionLogger
from workers.serving.protocols import mlflow_columns, mlflow_error, v2_columns, v2_datatype, v2_error
from workers.serving.registry import LoadedVersion, ModelRegistry, Predictions
from workers.serving.routing import SHADOW, Choice, NoReadyVersion, Router, ShadowRunner
from workers.serving.validation import InputError

SERVER_NAME = "mlplatform-serving"
SERVER_VERSION = "1"
MAX_EXPLAIN_ROWS = 100
V2_DATATYPE_OF_DTYPE = {"int64": "INT64", "float64": "FP64", "bool": "BOOL"}
JSON = b"application/json"
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    ref: tuple[str, str] | None = None  # the model version it is counted under in /metrics


def json_response(status: int, payload: Any, *, headers=(), ref=None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, [(b"content-type", JSON), *headers], ref)


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


class ServingApp:
    def __init__(
        self,
        *,
        registry: ModelRegistry,
        logger: PredictionLogger,
        limits: Limits,
        router: Router,
        config_path: Path | None = None,
        admin_token: str = "",
        features: OnlineFeatures | None = None,
    ):
        self.registry = registry
        self.logger = logger
        self.limits = limits
        self.router = router
        self.config_path = config_path
        self.admin_token = admin_token
        self.features = features
        self.metrics = Metrics()
        self.shadows = ShadowRunner()
        self._reload_lock = asyncio.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            started = time.perf_counter()
            response = await self._respond(scope, receive)
            if response.ref is not None:
                self.metrics.record(response.ref, time.perf_counter() - started, error=response.status >= 400)
            elif response.status >= 400:
                self.metrics.unrouted_errors += 1
            headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.logger.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shadows.wait()  # their records go into the log before it closes
                await self.logger.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- routing -------------------------------------------------------------------------------------------------

    async def _respond(self, scope, receive) -> Response:
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        mlflow = path in ("/ping", "/health", "/invocations")
        try:
            if path.startswith("/v2/models/"):
                return await self._model_route(scope, receive, method, path)
            route = ROUTES.get(path)
            if route is None:
                raise HttpError(404, f"No route {path}.")
            allowed, handler = route
            if method != allowed:
                raise HttpError(405, f"{path} takes {allowed}.")
            return await handler(self, scope, receive)
        except HttpError as exc:
            error = mlflow_error(str(exc)) if mlflow else v2_error(str(exc))
            return json_response(exc.status, error)

    async def _model_route(self, scope, receive, method: str, path: str) -> Response:
        parts = path.split("/")[3:]  # "", "v2", "models", <name>, ...
        name, rest, version = parts[0], parts[1:], None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
        action = rest[0] if len(rest) == 1 else ("" if not rest else None)
        handlers = {"": ("GET", self._model_metadata), "ready": ("GET", self._model_ready)}
        handlers |= {"infer": ("POST", self._infer), "explain": ("POST", self._explain)}
        if action not in handlers:
            raise HttpError(404, f"No route {path}.")
        allowed, handler = handlers[action]
        if method != allowed:
            raise HttpError(405, f"{path} takes {allowed}.")
        if not self.registry.knows(name, version):
            which = f"{name!r} version {version!r}" if version else f"{name!r}"
            raise HttpError(404, f"No model {which} is served here.")
        return await handler(scope, receive, name, version)

    def _serving(self, name: str, version: str | None) -> LoadedVersion:
        loaded = self.registry.get(name, version)
        if loaded is None:
            raise HttpError(503, f"Model {name!r} is not ready: {self.registry.failure(name, version)}")
        return loaded

    def _routed(self, name: str, version: str | None) -> bool:
        return version is None and name == self.router.traffic.model

    def _route(self, scope, columns: dict[str, list[Any]]) -> Choice:
        try:
            return self.router.choose(self._sticky_value(scope, columns))
        except NoReadyVersion as exc:
            raise HttpError(503, str(exc)) from None

    def _sticky_value(self, scope, columns: dict[str, list[Any]]) -> str | None:
        """The A/B key: the header of that name, else the column's value in the first row (one version answers a
        whole batch). Without it the request is split at random."""
        key = self.router.traffic.sticky_key
        if not key:
            return None
        header = key.lower().encode()
        for name, value in scope["headers"]:
            if name == header:
                return value.decode("latin-1")
        values = columns.get(key)
        return json.dumps(values[0]) if values else None

    def _not_ready_routes(self) -> list[dict[str, Any]]:
        return [
            {"version": state.version, "variant": state.variant, "role": state.role, "reason": state.reason}
            for state in self.router.states()
            if not state.ready
        ]

    # --- server endpoints ----------------------------------------------------------------------------------------

    async def _server_metadata(self, scope, receive) -> Response:
        return json_response(200, {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []})

    async def _live(self, scope, receive) -> Response:
        return json_response(200, {"live": True})

    async def _ready(self, scope, receive) -> Response:
        # Ready: the traffic policy has a loaded version to send requests to. Routed versions that are not ready
        # (their traffic goes to the others) are listed.
        ready = self.router.ready
        payload: dict[str, Any] = {"ready": ready}
        if not_ready := self._not_ready_routes():
            payload["not_ready_routes"] = not_ready
        # The protocol: 200 means ready, a 4xx status means not.
        return json_response(200 if ready else 400, payload)

    async def _ping(self, scope, receive) -> Response:
        # MLflow answers 200 with a newline once the model is loaded, 404 before.
        status = 200 if self.router.ready else 404
        return Response(status, b"\n", [(b"content-type", b"application/json")])

    async def _metrics(self, scope, receive) -> Response:
        text = self.metrics.render(
            dropped_log_records=self.logger.dropped,
            model=self.router.traffic.model,
            routes=self.router.states(),
            dropped_shadow_copies=self.shadows.dropped,
        )
        return Response(200, text.encode(), [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")])

    # --- model endpoints -----------------------------------------------------------------------------------------

    async def _model_metadata(self, scope, receive, name: str, version: str | None) -> Response:
        loaded = self._serving(name, version)
        columns = loaded.spec.input_signature["columns"]
        inputs = [
            {"name": column["name"], "datatype": V2_DATATYPE_OF_DTYPE.get(column.get("dtype"), "BYTES"), "shape": [-1]}
            for column in columns
        ]
        outputs = [{"name": "predict", "datatype": "BYTES" if loaded.classes else "FP64", "shape": [-1]}]
        if loaded.classes is not None:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(loaded.classes)]})
        payload = {
            "name": name,
            "versions": [version] if version else self.registry.versions_of(name),
            "platform": "sklearn",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {"problem_type": loaded.spec.problem_type, "version": loaded.spec.version},
        }
        return json_response(200, payload)

    async def _model_ready(self, scope, receive, name: str, version: str | None) -> Response:
        if self._routed(name, version):
            ready = self.router.ready
            payload: dict[str, Any] = {"name": name, "ready": ready}
            if not_ready := self._not_ready_routes():
                payload["not_ready_routes"] = not_ready
            return json_response(200 if ready else 400, payload)
        loaded = self.registry.get(name, version)
        payload = {"name": name, "ready": loaded is not None}
        if loaded is None:
            payload["reason"] = self.registry.failure(name, version)
        return json_response(200 if loaded else 400, payload)

    async def _infer(self, scope, receive, name: str, version: str | None) -> Response:
        choice = None if self._routed(name, version) else Choice(self._serving(name, version), variant=None)
        try:
            body = await self._json_body(scope, receive)
            columns = self._with_features(v2_columns(body))
            choice = choice or self._route(scope, columns)
            predictions, ids = self._predict(choice, columns, time.perf_counter())
        except (HttpError, InputError) as exc:
            return json_response(exc.status, v2_error(str(exc)), ref=choice and choice.loaded.spec.ref)
        loaded = choice.loaded
        ref = loaded.spec.ref
        outputs = [
            {
                "name": "predict",
                "shape": [len(ids)],
                "datatype": v2_datatype(predictions.labels),
                "data": predictions.labels,
            }
        ]
        if predictions.probabilities is not None:
            classes = loaded.classes
            outputs.append(
                {
                    "name": "predict_proba",
                    "shape": [len(ids), len(classes)],
                    "datatype": "FP64",
                    "parameters": {"classes": classes},
                    "data": [value for row in predictions.probabilities for value in row],
                }
            )
        payload = {
            "model_name": loaded.spec.name,
            "model_version": loaded.spec.version,
            "id": body.get("id") or ids[0],
            "parameters": {"prediction_ids": ids},
            "outputs": outputs,
        }
        return json_response(200, payload, headers=_answer_headers(loaded, ids), ref=ref)

    async def _explain(self, scope, receive, name: str, version: str | None) -> Response:
        loaded = self._serving(name, version)
        ref = loaded.spec.ref
        try:
            body = await self._json_body(scope, receive)
            frame = loaded.validator.frame(v2_columns(body))
            if len(frame) > MAX_EXPLAIN_ROWS:
                raise InputError("inputs", f"explain at most {MAX_EXPLAIN_ROWS} rows per request.", status=413)
            explanations = await asyncio.to_thread(loaded.explain, frame)
        except (HttpError, InputError) as exc:
            return json_response(exc.status, v2_error(str(exc)), ref=ref)
        payload = {
            "model_name": loaded.spec.name,
            "model_version": loaded.spec.version,
            "id": body.get("id") or uuid.uuid4().hex,
            "explanations": explanations,
        }
        return json_response(200, payload, headers=_answer_headers(loaded, []), ref=ref)

    async def _invocations(self, scope, receive) -> Response:
        choice = None
        try:
            body = await self._json_body(scope, receive)
            columns = self._with_features(mlflow_columns(body))
            choice = self._route(scope, columns)
            predictions, ids = self._predict(choice, columns, time.perf_counter())
        except (HttpError, InputError) as exc:
            return json_response(exc.status, mlflow_error(str(exc)), ref=choice and choice.loaded.spec.ref)
        loaded = choice.loaded
        ref = loaded.spec.ref
        payload = {"predictions": predictions.labels, "prediction_ids": ids, "model_version": loaded.spec.version}
        return json_response(200, payload, headers=_answer_headers(loaded, ids), ref=ref)

    # --- administration ------------------------------------------------------------------------------------------

    def _check_admin(self, scope) -> None:
        if not self.admin_token:
            raise HttpError(403, "Admin endpoints are disabled: SERVING_ADMIN_TOKEN is not set.")
        client = scope.get("client") or ("", 0)
        if client[0] not in LOOPBACK_HOSTS:
            raise HttpError(403, "Admin endpoints answer loopback clients only.")
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, f"Bearer {self.admin_token}".encode()):
            raise HttpError(401, "Authorization: the admin token is missing or wrong.")

    async def _admin_reload(self, scope, receive) -> Response:
        """Re-read the deployment file: new versions are loaded and verified (in a thread, requests keep being
        answered) before the registry swaps its table, then the new traffic policy replaces the old at once.
        A bad file changes nothing (400). A policy that routes to a version that did not load answers 409 naming
        the route: the versions and policy are applied, but that version gets no traffic (see routing)."""
        self._check_admin(scope)
        if self.config_path is None:
            raise HttpError(409, "SERVING_CONFIG: this server was not started from a deployment file.")
        async with self._reload_lock:
            try:
                deployment = await asyncio.to_thread(load_deployment, self.config_path)
                features = self.features
                if deployment.features != (features and features.lookup):
                    features = online_features(deployment.features)
            except ConfigError as exc:
                raise HttpError(400, str(exc)) from None
            failures = await asyncio.to_thread(self.registry.reload, deployment)
            self.router = Router(deployment.traffic, self.registry, rng=self.router.rng)
            self.features = features
        payload: dict[str, Any] = {
            "failures": [{"name": ref[0], "version": ref[1], "reason": why} for ref, why in failures.items()],
            "routes": [asdict(state) for state in self.router.states()],
        }
        ready = {spec.ref for spec in deployment.versions if self.registry.get(*spec.ref) is not None}
        try:
            check_traffic_ready(deployment.traffic, ready=ready, failures=failures)
        except ConfigError as exc:
            return json_response(409, {"error": str(exc), **payload})
        return json_response(200, payload)

    # --- shared steps --------------------------------------------------------------------------------------------

    def _with_features(self, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return columns if self.features is None else self.features.enrich(columns)

    def _predict(self, choice: Choice, columns: dict[str, list[Any]], started: float):
        loaded = choice.loaded
        inputs = columns if self.features is None else self.features.model_inputs(columns, loaded.signature_columns)
        frame = loaded.validator.frame(inputs)
        predictions = loaded.predict(frame, inputs)
        ids = [uuid.uuid4().hex for _ in range(len(frame))]
        self._log(choice, inputs, predictions, ids, latency_ms=(time.perf_counter() - started) * 1000)
        if choice.variant is not None:  # routed traffic (not a request for one named version) is copied
            self._copy_to_shadow(columns, ids)
        return predictions, ids

    def _log(
        self,
        choice: Choice,
        columns: dict[str, list[Any]],
        predictions: Predictions,
        ids: list[str],
        *,
        latency_ms: float,
        shadow_of: list[str] | None = None,
    ) -> None:
        now = time.time()
        names = list(columns)
        for row, prediction_id in enumerate(ids):
            outputs: dict[str, Any] = {"predict": predictions.labels[row]}
            if predictions.probabilities is not None:
                outputs["predict_proba"] = predictions.probabilities[row]
            record = {
                "prediction_id": prediction_id,
                "model": choice.loaded.spec.name,
                "version": choice.loaded.spec.version,
                "variant": choice.variant,
                "shadow": shadow_of is not None,
                "inputs": {name: columns[name][row] for name in names},
                "outputs": outputs,
                "latency_ms": latency_ms,
                "time": now,
            }
            if shadow_of is not None:
                record["shadow_of"] = shadow_of[row]
            self.logger.log(record)

    def _copy_to_shadow(self, columns: dict[str, list[Any]], live_ids: list[str]) -> None:
        """Fire and forget: the shadow predicts in its thread; its answer is counted and logged, never returned."""
        shadow = self.router.shadow()
        if shadow is None:
            return
        loaded = shadow.loaded

        if self.features is not None:
            columns = self.features.model_inputs(columns, loaded.signature_columns)

        def work() -> Predictions:
            return loaded.predict(loaded.validator.frame(columns), columns)

        def done(predictions: Predictions | None, seconds: float, error: Exception | None) -> None:
            self.metrics.record(loaded.spec.ref, seconds, error=error is not None, role=SHADOW)
            if predictions is not None:
                ids = [uuid.uuid4().hex for _ in live_ids]
                self._log(shadow, columns, predictions, ids, latency_ms=seconds * 1000, shadow_of=live_ids)

        self.shadows.submit(work, done)

    async def _json_body(self, scope, receive) -> Any:
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != JSON:
            raise HttpError(
                415, f"Content-Type: send application/json, not {content_type.decode(errors='replace') or 'nothing'}."
            )
        limit = self.limits.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and not declared.isdigit():
            raise HttpError(400, "Content-Length: not a number of bytes.")
        if declared is not None and int(declared) > limit:
            raise HttpError(413, f"body: larger than the limit of {limit} bytes.")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "body: the client disconnected before sending it all.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"body: larger than the limit of {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            return json.loads(b"".join(chunks))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, f"body: not valid JSON ({exc}).") from None


def _answer_headers(loaded: LoadedVersion, ids: list[str]) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-model-name", loaded.spec.name.encode()), (b"x-model-version", loaded.spec.version.encode())]
    if ids:
        headers.append((b"x-prediction-id", ",".join(ids).encode()))
    return headers


ROUTES = {
    "/v2": ("GET", ServingApp._server_metadata),
    "/v2/health/live": ("GET", ServingApp._live),
    "/v2/health/ready": ("GET", ServingApp._ready),
    "/ping": ("GET", ServingApp._ping),
    "/health": ("GET", ServingApp._ping),
    "/invocations": ("POST", ServingApp._invocations),
    "/metrics": ("GET", ServingApp._metrics),
    "/admin/reload": ("POST", ServingApp._admin_reload),
}


def create_app(settings: Settings | None = None) -> ServingApp:
    """The server for `settings` (default: from the environment), with its versions loaded."""
    settings = settings or settings_from_env()
    registry = ModelRegistry(key=settings.signing_key, max_rows=settings.limits.max_batch_rows)
    registry.reload(settings.deployment)
    sink = JsonLinesSink(
        settings.log_dir, rotate_bytes=settings.log_rotate_bytes, rotate_seconds=settings.log_rotate_seconds
    )
    return ServingApp(
        registry=registry,
        logger=PredictionLogger(sink),
        limits=settings.limits,
        router=Router(settings.deployment.traffic, registry),
        config_path=settings.config_path,
        admin_token=settings.admin_token,
        features=online_features(settings.deployment.features),
    )


class _FromEnvironment:
    """`uvicorn workers.serving.app:app`: the server is built from the environment on the first ASGI call
    (uvicorn's lifespan startup), not when this module is imported."""

    def __init__(self):
        self.server: ServingApp | None = None

    async def __call__(self, scope, receive, send) -> None:
        if self.server is None:
            self.server = create_app()
        await self.server(scope, receive, send)


app = _FromEnvironment()
