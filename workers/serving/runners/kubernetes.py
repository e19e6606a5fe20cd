"""The `kubernetes` runner: per endpoint, a ConfigMap (the deployment file), a Deployment (one pod per replica, from
the serving image of platform/serving/Dockerfile), a Service and a HorizontalPodAutoscaler, generated here as plain
dicts (`manifests`, `render_yaml` for the download) and applied with the official client (`KubernetesRunner`).

Decisions (docs/operations.md, "Model servers"):
- Names: `serving-<endpoint id, lower-cased>`; an id that does not survive that unchanged (upper case, '_' or '.',
  too long) gets 8 hex digits of its SHA-256 appended, so two ids never share objects.
- Secrets never appear in a manifest. A variable of the endpoint's environment whose name is in SECRET_VARIABLES or
  ends with one of SECRET_SUFFIXES (MODEL_SIGNING_KEY, AWS_SECRET_ACCESS_KEY, ...) is read from a key of the same
  name in an existing Secret (`secret_name`, the portal's `mlplatform-secrets` by default); its value in the
  endpoint is ignored. Every other variable is a plain `env` entry.
- Reload is a rolling update: the deployment file's SHA-256 is a pod-template annotation, so a changed file replaces
  the pods one at a time (maxSurge 1, maxUnavailable 0: a new pod takes traffic only once /v2/health/ready answers
  200, and an old one leaves only then). Pods get no SERVING_ADMIN_TOKEN: /admin/reload stays disabled.
- Prediction logs: SERVING_LOG_DIR is a PersistentVolumeClaim (`log_claim`, ReadWriteMany) that the portal's worker
  also mounts; each pod writes under <claim>/<resource name>/<pod name>/ (every pod's server has the same pid, which
  the log file names include, so pods do not share a folder).
"""

import copy
import hashlib
import json
import re
import time
from typing import Any

import yaml

from workers.serving.runners.base import (
    CRASH_LOOP,
    DEGRADED,
    NOT_READY,
    READY,
    STOPPED,
    Endpoint,
    EndpointError,
    EndpointStatus,
    ReplicaStatus,
    Runner,
)

PORT = 8080
CONFIG_MOUNT = "/etc/mlplatform/serving"
LOG_MOUNT = "/var/lib/mlplatform/predictions"
USER_ID = 10001  # the image's user, as in platform/k8s
APP_NAME = "mlplatform-serving"
LABEL_ENDPOINT = "mlplatform.io/endpoint"
ANNOTATION_ENDPOINT_ID = "mlplatform.io/endpoint-id"
ANNOTATION_CONFIG = "mlplatform.io/config-sha256"
DEFAULT_SECRET = "mlplatform-secrets"
DEFAULT_LOG_CLAIM = "mlplatform-predictions"
DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
DEFAULT_CPU_TARGET = 70
SECRET_VARIABLES = ("MODEL_SIGNING_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_SUFFIXES = ("_KEY", "_SECRET", "_TOKEN", "_PASSWORD", "_CREDENTIALS")
# Set here for every pod, whatever the endpoint says: the file and the log folder are the pod's mounts.
RUNNER_VARIABLES = ("SERVING_CONFIG", "SERVING_LOG_DIR", "SERVING_ADMIN_TOKEN", "POD_NAME")
MAX_NAME = 56  # leaves room for "-config" within the 63 characters of a label value or a Service name
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def resource_name(endpoint_id: str) -> str:
    """The name of the endpoint's Deployment, Service and HorizontalPodAutoscaler (a DNS label)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", endpoint_id.lower()).strip("-")
    name = f"serving-{slug}"
    if slug == endpoint_id and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(endpoint_id.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def config_map_name(endpoint_id: str) -> str:
    return f"{resource_name(endpoint_id)}-config"


def deployment_file(config: dict[str, Any]) -> str:
    """The deployment file's text, byte for byte what the local and docker runners write."""
    return json.dumps(config, indent=1, sort_keys=True)


def config_sha256(config: dict[str, Any]) -> str:
    return hashlib.sha256(deployment_file(config).encode()).hexdigest()


def is_secret(name: str) -> bool:
    return name in SECRET_VARIABLES or name.endswith(SECRET_SUFFIXES)


def service_url(endpoint_id: str, namespace: str) -> str:
    """Where the portal (or anything in the cluster) sends predictions."""
    return f"http://{resource_name(endpoint_id)}.{namespace}.svc:80"


def manifests(
    endpoint: Endpoint,
    *,
    image: str,
    namespace: str,
    max_replicas: int | None = None,
    cpu_target: int = DEFAULT_CPU_TARGET,
    resources: dict[str, Any] | None = None,
    secret_name: str = DEFAULT_SECRET,
    log_claim: str = DEFAULT_LOG_CLAIM,
) -> list[dict[str, Any]]:
    """The ConfigMap, Deployment, Service and HorizontalPodAutoscaler (autoscaling/v2) of `endpoint`.

    The autoscaler keeps between `endpoint.replicas` and `max_replicas` pods (default twice the replicas), adding
    pods while their average CPU use is above `cpu_target` percent of their request."""
    max_replicas = 2 * endpoint.replicas if max_replicas is None else max_replicas
    _check_options(endpoint, namespace=namespace, max_replicas=max_replicas, cpu_target=cpu_target)
    name = resource_name(endpoint.id)
    labels = _labels(endpoint)
    metadata = {"name": name, "namespace": namespace, "labels": labels, "annotations": _annotations(endpoint)}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**metadata, "name": config_map_name(endpoint.id)},
        "data": {"deployment.json": deployment_file(endpoint.config)},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": endpoint.replicas,
            "selector": {"matchLabels": _selector(endpoint)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {**_annotations(endpoint), ANNOTATION_CONFIG: config_sha256(endpoint.config)},
                },
                "spec": _pod_spec(endpoint, image=image, resources=resources, secret_name=secret_name, claim=log_claim),
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(endpoint),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": endpoint.replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_target}},
                }
            ],
        },
    }
    return copy.deepcopy([config_map, deployment, service, autoscaler])  # no dict shared between objects


def render_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, for `kubectl apply -f`."""
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, explicit_start=True)


def manifests_yaml(endpoint: Endpoint, *, image: str, namespace: str, **options: Any) -> str:
    """The download: the endpoint's manifests as one YAML file (no secret value in it)."""
    return render_yaml(manifests(endpoint, image=image, namespace=namespace, **options))


def _check_options(endpoint: Endpoint, *, namespace: str, max_replicas: int, cpu_target: int) -> None:
    if not isinstance(namespace, str) or not DNS_LABEL.fullmatch(namespace):
        raise EndpointError(f"namespace: a DNS label (lower-case letters, digits, '-') is required, got {namespace!r}.")
    if not isinstance(max_replicas, int) or max_replicas < endpoint.replicas:
        raise EndpointError(
            f"max_replicas: at least the endpoint's {endpoint.replicas} replicas is required, got {max_replicas!r}."
        )
    if not isinstance(cpu_target, int) or not 1 <= cpu_target <= 100:
        raise EndpointError(f"cpu_target: a percentage from 1 to 100 is required, got {cpu_target!r}.")


def _selector(endpoint: Endpoint) -> dict[str, str]:
    return _selector_for(endpoint.id)


def _labels(endpoint: Endpoint) -> dict[str, str]:
    return {
        **_selector(endpoint),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "mlplatform",
        "app.kubernetes.io/managed-by": "mlplatform",
    }


def _annotations(endpoint: Endpoint) -> dict[str, str]:
    return {ANNOTATION_ENDPOINT_ID: endpoint.id}  # the id as given: a label value could not hold every id


def _environment(endpoint: Endpoint, *, secret_name: str) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "SERVING_CONFIG", "value": f"{CONFIG_MOUNT}/deployment.json"},
        {"name": "SERVING_LOG_DIR", "value": LOG_MOUNT},
    ]
    for variable in sorted(endpoint.environment):
        if variable in RUNNER_VARIABLES:
            continue
        if is_secret(variable):
            reference = {"secretKeyRef": {"name": secret_name, "key": variable}}
            variables.append({"name": variable, "valueFrom": reference})
        else:
            variables.append({"name": variable, "value": endpoint.environment[variable]})
    return variables


def _pod_spec(
    endpoint: Endpoint, *, image: str, resources: dict[str, Any] | None, secret_name: str, claim: str
) -> dict[str, Any]:
    command = ["uvicorn", "workers.serving.app:app", "--host", "0.0.0.0", "--port", str(PORT)]  # noqa: S104
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,  # the prediction log volume is writable by the server
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,  # the server renames its last .jsonl.part on shutdown
        "automountServiceAccountToken": False,  # the server never calls the Kubernetes API
        "containers": [
            {
                "name": "server",
                "image": image,
                "command": [*command, "--lifespan", "on", "--no-access-log"],
                "ports": [{"name": "http", "containerPort": PORT}],
                "env": _environment(endpoint, secret_name=secret_name),
                # Loading (and verifying) every version can take minutes: liveness waits for the startup probe.
                "startupProbe": {
                    "httpGet": {"path": "/v2/health/live", "port": "http"},
                    "periodSeconds": 5,
                    "failureThreshold": 60,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/v2/health/ready", "port": "http"},
                    "periodSeconds": 5,
                    "timeoutSeconds": 3,
                    "failureThreshold": 2,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/v2/health/live", "port": "http"},
                    "periodSeconds": 20,
                    "timeoutSeconds": 5,
                    "failureThreshold": 3,
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": copy.deepcopy(resources or DEFAULT_RESOURCES),
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                    {"name": "predictions", "mountPath": LOG_MOUNT, "subPathExpr": f"{endpoint.id}/$(POD_NAME)"},
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(endpoint.id)}},
            {"name": "predictions", "persistentVolumeClaim": {"claimName": claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }


# --- applying them --------------------------------------------------------------------------------------------------

# kind -> (which API client, the method name's suffix): read_namespaced_<suffix>, create_..., replace_..., delete_...
KIND_API = {
    "ConfigMap": ("core", "config_map"),
    "Deployment": ("apps", "deployment"),
    "Service": ("core", "service"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontal_pod_autoscaler"),
}
STOP_ORDER = ("HorizontalPodAutoscaler", "Deployment", "Service", "ConfigMap")  # the autoscaler first: no scale-up


class KubernetesRunnerError(RuntimeError):
    """The API server refused something; the message names the object."""


class KubernetesRunner(Runner):
    """Applies `manifests` with create-or-replace (reading each object first; a replace carries its
    resourceVersion, so a concurrent change fails instead of being overwritten) and reports status from the
    Deployment and its pods. API clients are injected (CoreV1Api, AppsV1Api, AutoscalingV2Api) or built from the
    in-cluster service account, else the kubeconfig."""

    def __init__(
        self,
        *,
        image: str,
        namespace: str,
        core_api: Any = None,
        apps_api: Any = None,
        autoscaling_api: Any = None,
        ready_timeout: float = 180.0,
        poll_seconds: float = 2.0,
        **manifest_options: Any,
    ):
        self.image = image
        self.namespace = namespace
        self._apis = {"core": core_api, "apps": apps_api, "autoscaling": autoscaling_api}
        self.ready_timeout = ready_timeout
        self.poll_seconds = poll_seconds
        self.manifest_options = manifest_options

    # --- the interface -------------------------------------------------------------------------------------------

    def ensure(self, endpoint: Endpoint) -> EndpointStatus:
        """Apply the four objects and wait until the rollout finished (every pod of the current template ready), a
        pod crash-loops, or `ready_timeout` passes."""
        objects = manifests(endpoint, image=self.image, namespace=self.namespace, **self.manifest_options)
        for body in objects:
            self._apply(body)
        return self._wait_for_rollout(endpoint.id)

    def status(self, endpoint_id: str) -> EndpointStatus:
        name = resource_name(endpoint_id)
        deployment = self._read("Deployment", name)
        if deployment is None:
            return EndpointStatus(endpoint_id=endpoint_id, state=STOPPED, reason="no replica runs.")
        replicas = [self._replica_status(index, pod) for index, pod in enumerate(self._pods(endpoint_id))]
        desired = deployment.spec.replicas or 0
        crash_loop = any(replica.reason.startswith("crash loop") for replica in replicas)
        ready = sum(replica.ready for replica in replicas)
        if crash_loop:
            state = CRASH_LOOP
            reason = next(replica.reason for replica in replicas if replica.reason.startswith("crash loop"))
        elif replicas and ready >= desired and ready == len(replicas):
            state, reason = READY, ""
        else:
            state = DEGRADED if ready else NOT_READY
            reason = next((replica.reason for replica in replicas if not replica.ready), "")
            reason = reason or f"{ready} of {desired} pods ready ({len(replicas)} exist)."
        return EndpointStatus(endpoint_id=endpoint_id, state=state, replicas=tuple(replicas), reason=reason)

    def stop(self, endpoint_id: str) -> None:
        """Delete the endpoint's objects (its pods go with the Deployment); the prediction logs stay on the claim."""
        names = {kind: resource_name(endpoint_id) for kind in KIND_API}
        names["ConfigMap"] = config_map_name(endpoint_id)
        for kind in STOP_ORDER:
            group, suffix = KIND_API[kind]
            delete = getattr(self._api(group), f"delete_namespaced_{suffix}")
            self._call(f"cannot delete {kind} {names[kind]}", delete, names[kind], self.namespace, missing_ok=True)

    def reload(self, endpoint: Endpoint) -> EndpointStatus:
        """A new deployment file rolls the pods (see the module docstring): the same as `ensure`."""
        return self.ensure(endpoint)

    # --- applying ------------------------------------------------------------------------------------------------

    def _api(self, group: str) -> Any:
        if self._apis[group] is None:
            self._apis |= _default_apis()
        return self._apis[group]

    def _read(self, kind: str, name: str) -> Any:
        group, suffix = KIND_API[kind]
        read = getattr(self._api(group), f"read_namespaced_{suffix}")
        return self._call(f"cannot read {kind} {name}", read, name, self.namespace, missing_ok=True)

    def _apply(self, body: dict[str, Any]) -> None:
        kind, name = body["kind"], body["metadata"]["name"]
        group, suffix = KIND_API[kind]
        api = self._api(group)
        existing = self._read(kind, name)
        if existing is None:
            create = getattr(api, f"create_namespaced_{suffix}")
            self._call(f"cannot create {kind} {name}", create, self.namespace, body)
            return
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        if kind == "Service":  # immutable once allocated: a replace must repeat it
            body["spec"]["clusterIP"] = existing.spec.cluster_ip
        if kind == "Deployment":  # keep the autoscaler's current scale within the new bounds
            minimum = body["spec"]["replicas"]
            maximum = self._max_replicas(name, default=minimum)
            body["spec"]["replicas"] = min(max(existing.spec.replicas or minimum, minimum), maximum)
        replace = getattr(api, f"replace_namespaced_{suffix}")
        self._call(f"cannot replace {kind} {name}", replace, name, self.namespace, body)

    def _max_replicas(self, name: str, *, default: int) -> int:
        autoscaler = self._read("HorizontalPodAutoscaler", name)
        return autoscaler.spec.max_replicas if autoscaler is not None else default

    def _call(self, what: str, function, *args, missing_ok: bool = False):
        """The client's ApiException becomes KubernetesRunnerError naming the object; a 404 is None where allowed."""
        from kubernetes.client.exceptions import ApiException  # imported only where this runner is used

        try:
            return function(*args)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            detail = _api_message(exc)
            raise KubernetesRunnerError(f"kubernetes: {what} in namespace {self.namespace}: {detail}") from None

    # --- status --------------------------------------------------------------------------------------------------

    def _pods(self, endpoint_id: str) -> list[Any]:
        """The endpoint's pods that are not being deleted, by name."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(_selector_for(endpoint_id).items()))
        pods = self._call(
            f"cannot list the pods of {resource_name(endpoint_id)}",
            lambda: self._api("core").list_namespaced_pod(self.namespace, label_selector=selector),
        )
        alive = [pod for pod in pods.items if pod.metadata.deletion_timestamp is None]
        return sorted(alive, key=lambda pod: pod.metadata.name)

    def _replica_status(self, index: int, pod: Any) -> ReplicaStatus:
        status = pod.status
        container = (status.container_statuses or [None])[0]
        ready = any(condition.type == "Ready" and condition.status == "True" for condition in status.conditions or [])
        restarts = container.restart_count if container is not None else 0
        exit_code = _last_exit_code(container)
        waiting = container.state.waiting if container is not None and container.state is not None else None
        if waiting is not None and waiting.reason == "CrashLoopBackOff":
            reason = f"crash loop: {restarts} restarts, last exit code {exit_code}; {waiting.message or ''}".strip()
        elif waiting is not None:
            reason = f"{waiting.reason}: {waiting.message or 'waiting'}"
        elif not ready:
            reason = f"not ready: pod {pod.metadata.name} is {status.phase}, /v2/health/ready does not answer 200"
        else:
            reason = ""
        return ReplicaStatus(
            index=index,
            url=f"http://{status.pod_ip}:{PORT}" if status.pod_ip else "",
            pid=None,
            alive=status.phase == "Running",
            ready=ready,
            restarts=restarts,
            last_exit_code=exit_code,
            reason=reason,
        )

    def _rollout_done(self, endpoint_id: str) -> bool:
        deployment = self._read("Deployment", resource_name(endpoint_id))
        if deployment is None:
            return False
        spec, status = deployment.spec, deployment.status
        desired = spec.replicas or 0
        current = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        updated = (status.updated_replicas or 0) >= desired
        settled = (status.replicas or 0) == (status.updated_replicas or 0)  # no pod of the old template left
        return current and updated and settled and (status.ready_replicas or 0) >= desired

    def _wait_for_rollout(self, endpoint_id: str) -> EndpointStatus:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            done = self._rollout_done(endpoint_id)
            status = self.status(endpoint_id)
            if done or status.state == CRASH_LOOP or time.monotonic() >= deadline:
                return status
            time.sleep(self.poll_seconds)


def _selector_for(endpoint_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP_NAME, LABEL_ENDPOINT: resource_name(endpoint_id)}


def _last_exit_code(container: Any) -> int | None:
    if container is None:
        return None
    for state in (container.state, container.last_state):
        terminated = state.terminated if state is not None else None
        if terminated is not None:
            return terminated.exit_code
    return None


def _api_message(exc: Exception) -> str:
    """The API server's own sentence (the `message` of its Status body) when there is one."""
    body = getattr(exc, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    return f"{getattr(exc, 'status', '?')} {message or getattr(exc, 'reason', '') or exc}"


def _default_apis() -> dict[str, Any]:
    """Clients from the pod's service account when running in the cluster, else from the kubeconfig."""
    from kubernetes import client, config  # imported only where this runner is used

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return {"core": client.CoreV1Api(), "apps": client.AppsV1Api(), "autoscaling": client.AutoscalingV2Api()}
