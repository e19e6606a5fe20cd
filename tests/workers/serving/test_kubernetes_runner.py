"""The kubernetes runner: the manifests it generates, their YAML, and the runner driven against in-test fakes of the
Kubernetes client's APIs (there is no cluster on these machines)."""

import json
import re
from types import SimpleNamespace

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from workers.serving.runners.base import CRASH_LOOP, NOT_READY, READY, STOPPED, Endpoint, EndpointError
from workers.serving.runners.kubernetes import (
    ANNOTATION_CONFIG,
    KubernetesRunner,
    KubernetesRunnerError,
    config_sha256,
    manifests,
    manifests_yaml,
    render_yaml,
    resource_name,
)

SIGNING_KEY = "signing-key-value-never-in-a-manifest"
CONFIG = {
    "models": [
        {
            "name": "churn",
            "version": "1",
            "artifact_store": "s3://mlplatform",
            "artifact_key": "models/churn/v1/model.joblib",
            "sha256": "a" * 64,
            "signature": "b" * 64,
            "input_signature": {"columns": [{"name": "age", "kind": "numeric"}]},
            "problem_type": "binary",
        }
    ]
}


def endpoint(config=CONFIG, *, replicas: int = 2, endpoint_id: str = "churn-prod", **environment: str) -> Endpoint:
    return Endpoint(
        id=endpoint_id,
        config=config,
        replicas=replicas,
        environment={"MODEL_SIGNING_KEY": SIGNING_KEY, **environment},
    )


def version_two():
    return {"models": [{**CONFIG["models"][0], "version": "2"}]}


def generate(served: Endpoint, **options) -> dict[str, dict]:
    objects = manifests(served, image="registry.example.com/mlplatform-serving:1.2", namespace="models", **options)
    return {item["kind"]: item for item in objects}


def container_of(objects: dict[str, dict]) -> dict:
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


# --- the manifests --------------------------------------------------------------------------------------------------


def test_manifests_are_a_config_map_deployment_service_and_autoscaler_named_for_the_endpoint():
    objects = manifests(endpoint(), image="img:1", namespace="models")

    assert [(item["apiVersion"], item["kind"], item["metadata"]["name"]) for item in objects] == [
        ("v1", "ConfigMap", "serving-churn-prod-config"),
        ("apps/v1", "Deployment", "serving-churn-prod"),
        ("v1", "Service", "serving-churn-prod"),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "serving-churn-prod"),
    ]
    assert {item["metadata"]["namespace"] for item in objects} == {"models"}
    assert {item["metadata"]["annotations"]["mlplatform.io/endpoint-id"] for item in objects} == {"churn-prod"}


def test_the_config_map_holds_the_deployment_file_and_the_pods_mount_it_read_only():
    objects = generate(endpoint())

    assert json.loads(objects["ConfigMap"]["data"]["deployment.json"]) == CONFIG
    mounts = {mount["name"]: mount for mount in container_of(objects)["volumeMounts"]}
    assert mounts["config"] == {"name": "config", "mountPath": "/etc/mlplatform/serving", "readOnly": True}
    volumes = {volume["name"]: volume for volume in objects["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "serving-churn-prod-config"
    env = {item["name"]: item for item in container_of(objects)["env"]}
    assert env["SERVING_CONFIG"]["value"] == "/etc/mlplatform/serving/deployment.json"


def test_the_deployment_has_the_replicas_probes_rolling_strategy_and_runs_non_root_read_only():
    objects = generate(endpoint(replicas=3))
    deployment = objects["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(objects)

    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert container["image"] == "registry.example.com/mlplatform-serving:1.2"
    assert container["command"][:2] == ["uvicorn", "workers.serving.app:app"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["requests"]["cpu"] == "250m"  # the autoscaler's CPU target needs a request


def test_the_config_hash_annotation_changes_with_the_file_and_not_otherwise():
    def annotation(served: Endpoint) -> str:
        return generate(served)["Deployment"]["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG]

    base = annotation(endpoint())
    reordered = {"models": [dict(reversed(list(CONFIG["models"][0].items())))]}

    assert base == config_sha256(CONFIG)
    assert annotation(endpoint(reordered)) == base
    assert annotation(endpoint(replicas=5, SERVING_MAX_BATCH_ROWS="10")) == base
    assert annotation(endpoint(version_two())) != base


def test_secrets_are_references_to_a_secret_and_their_values_appear_nowhere():
    served = endpoint(AWS_SECRET_ACCESS_KEY="aws-secret-value", S3_ENDPOINT_URL="http://minio:9000")

    objects = generate(served, secret_name="serving-secrets")
    text = render_yaml(list(objects.values()))

    env = {item["name"]: item for item in container_of(objects)["env"]}
    assert env["MODEL_SIGNING_KEY"] == {
        "name": "MODEL_SIGNING_KEY",
        "valueFrom": {"secretKeyRef": {"name": "serving-secrets", "key": "MODEL_SIGNING_KEY"}},
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "AWS_SECRET_ACCESS_KEY"
    assert env["S3_ENDPOINT_URL"] == {"name": "S3_ENDPOINT_URL", "value": "http://minio:9000"}
    assert SIGNING_KEY not in text and "aws-secret-value" not in text
    assert "SERVING_ADMIN_TOKEN" not in env  # reload is a rollout: the admin endpoint stays disabled


def test_prediction_logs_go_to_the_shared_claim_one_folder_per_pod_whatever_the_endpoint_says():
    objects = generate(endpoint(SERVING_LOG_DIR="/home/someone/logs"), log_claim="predictions")
    container = container_of(objects)

    env = {item["name"]: item for item in container["env"]}
    assert env["SERVING_LOG_DIR"]["value"] == "/var/lib/mlplatform/predictions"
    assert [item["name"] for item in container["env"]].count("SERVING_LOG_DIR") == 1
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["predictions"]["subPathExpr"] == "churn-prod/$(POD_NAME)"  # the portal reads <root>/<endpoint id>/
    volumes = {volume["name"]: volume for volume in objects["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["predictions"]["persistentVolumeClaim"] == {"claimName": "predictions"}


def test_the_service_and_the_autoscaler_bounds():
    objects = generate(endpoint(replicas=2), max_replicas=6, cpu_target=60)

    assert objects["Service"]["spec"]["selector"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]
    assert objects["Service"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    spec = objects["HorizontalPodAutoscaler"]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "serving-churn-prod"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    assert spec["metrics"][0]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 60},
    }
    assert generate(endpoint(replicas=3))["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_replicas": 1}, "max_replicas: at least the endpoint's 2 replicas is required, got 1."),
        ({"cpu_target": 0}, "cpu_target: a percentage from 1 to 100 is required, got 0."),
    ],
)
def test_bad_options_are_refused_naming_them(options, message):
    with pytest.raises(EndpointError) as raised:
        generate(endpoint(), **options)
    assert str(raised.value) == message


def test_a_namespace_must_be_a_dns_label():
    with pytest.raises(EndpointError, match=r"^namespace: "):
        manifests(endpoint(), image="img", namespace="Models_1")


def test_names_are_dns_labels_and_distinct_for_ids_that_lower_case_alike():
    names = [resource_name(i) for i in ("churn", "Churn", "churn_v2", "churn.v2", "x" * 64, "y" * 63 + "-")]

    assert names[0] == "serving-churn"
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z]([-a-z0-9]{0,54}[a-z0-9])?", name) for name in names), names


def test_the_yaml_download_round_trips():
    objects = manifests(endpoint(), image="img:1", namespace="models")

    text = manifests_yaml(endpoint(), image="img:1", namespace="models")

    assert list(yaml.safe_load_all(text)) == objects
    assert text.count("\n---") + text.startswith("---") == 4


# --- the runner against fake API clients -----------------------------------------------------------------------------


def model(value):
    """Like the client's models: attributes in snake_case."""
    if isinstance(value, dict):
        return SimpleNamespace(
            **{re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower(): model(v) for key, v in value.items()}
        )
    if isinstance(value, list):
        return [model(item) for item in value]
    return value


class FakeCluster:
    """The objects of one namespace, and a controller that makes every Deployment's pods at once. `pods_behave`:
    "ready", "not_ready" or "crash"."""

    def __init__(self):
        self.objects: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.pods_behave = "ready"
        self.forbidden = False

    def read(self, kind, name, namespace):
        if (kind, name) not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return model(self.objects[(kind, name)])

    def write(self, verb, kind, namespace, body, name=None):
        if self.forbidden:
            exc = ApiException(status=403, reason="Forbidden")
            exc.body = json.dumps({"message": f'deployments.apps is forbidden: cannot {verb} in "{namespace}"'})
            raise exc
        body = json.loads(json.dumps(body))
        key = (kind, body["metadata"]["name"])
        previous = self.objects.get(key)
        if verb == "create":
            assert previous is None and "resourceVersion" not in body["metadata"]
        else:
            assert body["metadata"]["resourceVersion"] == previous["metadata"]["resourceVersion"]
        version = int(previous["metadata"]["resourceVersion"]) + 1 if previous else 1
        body["metadata"]["resourceVersion"] = str(version)
        body["metadata"]["generation"] = version
        if kind == "Service" and previous is None:
            body["spec"]["clusterIP"] = "10.0.0.17"
        if kind == "Deployment":
            ready = body["spec"]["replicas"] if self.pods_behave == "ready" else 0
            body["status"] = {
                "observedGeneration": version,
                "replicas": body["spec"]["replicas"],
                "updatedReplicas": body["spec"]["replicas"],
                "readyReplicas": ready,
            }
        self.objects[key] = body
        self.calls.append((verb, kind, key[1]))

    def delete(self, kind, name, namespace):
        if self.objects.pop((kind, name), None) is None:
            raise ApiException(status=404, reason="Not Found")
        self.calls.append(("delete", kind, name))

    def pods(self, namespace, label_selector):
        wanted = dict(pair.split("=") for pair in label_selector.split(","))
        items = []
        for (kind, name), body in sorted(self.objects.items()):
            labels = body["spec"]["template"]["metadata"]["labels"] if kind == "Deployment" else {}
            if kind != "Deployment" or not wanted.items() <= labels.items():
                continue
            items += [self.pod(name, index) for index in range(body["spec"]["replicas"])]
        return SimpleNamespace(items=items)

    def pod(self, deployment: str, index: int):
        ready = self.pods_behave == "ready"
        waiting = None
        last_state = {}
        if self.pods_behave == "crash":
            waiting = {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
            last_state = {"terminated": {"exitCode": 3}}
        return model(
            {
                "metadata": {"name": f"{deployment}-7f9c-{index}", "deletionTimestamp": None},
                "status": {
                    "phase": "Running",
                    "podIP": f"10.1.0.{index + 10}",
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                    "containerStatuses": [
                        {
                            "restartCount": 4 if waiting else 0,
                            "state": {"waiting": model(waiting) if waiting else None, "terminated": None},
                            "lastState": {"terminated": model(last_state.get("terminated")), "waiting": None},
                        }
                    ],
                },
            }
        )


class FakeApi:
    """CoreV1Api, AppsV1Api or AutoscalingV2Api: read_/create_/replace_/delete_namespaced_<kind>."""

    KINDS = {
        "config_map": "ConfigMap",
        "service": "Service",
        "deployment": "Deployment",
        "horizontal_pod_autoscaler": "HorizontalPodAutoscaler",
    }

    def __init__(self, cluster: FakeCluster, *suffixes: str):
        self.cluster = cluster
        self.suffixes = suffixes

    def __getattr__(self, method: str):
        verb, _, suffix = method.partition("_namespaced_")
        if suffix not in self.suffixes:
            raise AttributeError(method)
        kind = self.KINDS[suffix]
        if verb == "read":
            return lambda name, namespace: self.cluster.read(kind, name, namespace)
        if verb == "create":
            return lambda namespace, body: self.cluster.write("create", kind, namespace, body)
        if verb == "replace":
            return lambda name, namespace, body: self.cluster.write("replace", kind, namespace, body, name)
        if verb == "delete":
            return lambda name, namespace: self.cluster.delete(kind, name, namespace)
        raise AttributeError(method)

    def list_namespaced_pod(self, namespace, label_selector):
        return self.cluster.pods(namespace, label_selector)


@pytest.fixture
def cluster():
    return FakeCluster()


@pytest.fixture
def runner(cluster):
    return KubernetesRunner(
        image="mlplatform-serving:test",
        namespace="models",
        core_api=FakeApi(cluster, "config_map", "service"),
        apps_api=FakeApi(cluster, "deployment"),
        autoscaling_api=FakeApi(cluster, "horizontal_pod_autoscaler"),
        ready_timeout=0.2,
        poll_seconds=0.01,
        max_replicas=5,
    )


def test_ensure_creates_the_four_objects_and_reports_each_pod_ready(runner, cluster):
    status = runner.ensure(endpoint(replicas=2))

    assert status.state == READY
    assert [replica.url for replica in status.replicas] == ["http://10.1.0.10:8080", "http://10.1.0.11:8080"]
    assert [call[:2] for call in cluster.calls] == [
        ("create", "ConfigMap"),
        ("create", "Deployment"),
        ("create", "Service"),
        ("create", "HorizontalPodAutoscaler"),
    ]
    stored = cluster.objects[("Deployment", "serving-churn-prod")]
    generated = manifests(endpoint(replicas=2), image="mlplatform-serving:test", namespace="models", max_replicas=5)[1]
    assert stored["spec"] == {**generated["spec"], "replicas": 2}
    assert stored["metadata"]["namespace"] == "models"


def test_a_changed_file_replaces_the_objects_keeping_the_cluster_ip_and_the_autoscaled_count(runner, cluster):
    runner.ensure(endpoint(replicas=2))
    cluster.objects[("Deployment", "serving-churn-prod")]["spec"]["replicas"] = 4  # the autoscaler scaled up

    status = runner.ensure(endpoint(version_two(), replicas=2))

    assert status.state == READY
    assert [call[0] for call in cluster.calls[4:]] == ["replace"] * 4
    deployment = cluster.objects[("Deployment", "serving-churn-prod")]
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG] == config_sha256(version_two())
    assert cluster.objects[("Service", "serving-churn-prod")]["spec"]["clusterIP"] == "10.0.0.17"
    assert json.loads(cluster.objects[("ConfigMap", "serving-churn-prod-config")]["data"]["deployment.json"]) == (
        version_two()
    )


def test_pods_that_are_not_ready_or_crash_loop_are_reported_with_the_reason(runner, cluster):
    cluster.pods_behave = "not_ready"
    not_ready = runner.ensure(endpoint(replicas=1))
    cluster.pods_behave = "crash"
    crashing = runner.status("churn-prod")

    assert not_ready.state == NOT_READY
    assert not_ready.reason.startswith("not ready: pod serving-churn-prod-7f9c-0 is Running")
    assert crashing.state == CRASH_LOOP
    assert crashing.reason == ("crash loop: 4 restarts, last exit code 3; back-off 40s restarting failed container")
    assert crashing.replicas[0].restarts == 4 and crashing.replicas[0].last_exit_code == 3


def test_stop_deletes_everything_and_is_idempotent(runner, cluster):
    runner.ensure(endpoint())

    runner.stop("churn-prod")
    runner.stop("churn-prod")

    assert cluster.objects == {}
    assert [call[1] for call in cluster.calls if call[0] == "delete"] == [
        "HorizontalPodAutoscaler",
        "Deployment",
        "Service",
        "ConfigMap",
    ]
    assert runner.status("churn-prod").state == STOPPED


def test_an_api_refusal_is_an_error_naming_the_object_and_the_servers_message(runner, cluster):
    cluster.forbidden = True

    with pytest.raises(KubernetesRunnerError) as raised:
        runner.ensure(endpoint())

    assert str(raised.value) == (
        "kubernetes: cannot create ConfigMap serving-churn-prod-config in namespace models: "
        '403 deployments.apps is forbidden: cannot create in "models"'
    )
