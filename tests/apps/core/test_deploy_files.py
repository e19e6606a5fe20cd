"""Deployment files stay consistent: compose, the Dockerfile, Kubernetes manifests, the health check, the docs.

Docker and kubectl are not available to the tests, so the files are parsed and their wiring checked.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "platform" / "k8s"
APP_SERVICES = ["web", "worker", "beat"]
IMAGE = "mlplatform"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def manifests() -> list[dict]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def kind(name: str) -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] == name]


def workload(name: str) -> dict:
    return next(doc for doc in kind("Deployment") + kind("Job") if doc["metadata"]["name"] == name)


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def settings_env_vars() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z0-9_]+)"', source))


# --- docker-compose.yml -----------------------------------------------------------------------------------------
def test_compose_has_the_six_services():
    assert {"postgres", "redis", "minio", "web", "worker", "beat"} <= set(compose()["services"])


def test_compose_backing_services_use_the_pinned_major_versions():
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].startswith("minio/minio")


def test_compose_app_services_share_one_image_built_by_platform_dockerfile():
    services = compose()["services"]
    builds = {name: services[name]["build"] for name in APP_SERVICES}
    images = {services[name]["image"] for name in APP_SERVICES}

    assert all(build == {"context": ".", "dockerfile": "platform/Dockerfile"} for build in builds.values())
    assert images == {"mlplatform:local"}
    assert (ROOT / "platform" / "Dockerfile").is_file()


def test_compose_app_services_run_in_production_with_postgres_redis_and_minio():
    services = compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["MLPLATFORM_ENV"] == "production"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # from .env, refused when missing
        assert env["DATABASE_URL"].startswith("postgres://mlplatform:${POSTGRES_PASSWORD")
        assert env["DATABASE_URL"].endswith("@postgres:5432/mlplatform")
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["REDIS_URL"] == "redis://redis:6379/1"
        assert env["ARTIFACT_STORE"] == "s3://mlplatform"
        assert env["S3_ENDPOINT_URL"] == "http://minio:9000"
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
        assert "DEBUG" not in env


def test_compose_app_environment_names_only_variables_something_reads():
    known = settings_env_vars() | {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "WEB_CONCURRENCY",
    }
    for name in APP_SERVICES:
        assert set(compose()["services"][name]["environment"]) - known == set()


def test_compose_web_migrates_before_gunicorn_and_checks_healthz():
    web = compose()["services"]["web"]
    command = " ".join(web["command"])

    assert command.index("manage.py migrate --noinput") < command.index("exec gunicorn config.wsgi:application")
    assert "--bind 0.0.0.0:8000" in command
    assert web["healthcheck"]["test"] == ["CMD", "python", "platform/healthcheck.py"]
    assert web["ports"] == ["127.0.0.1:8000:8000"]


def test_compose_worker_and_beat_start_after_web_is_healthy():
    services = compose()["services"]
    for name in ["worker", "beat"]:
        depends = services[name]["depends_on"]
        assert depends["web"] == {"condition": "service_healthy"}
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["redis"] == {"condition": "service_healthy"}
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert "default,training,monitoring" in services["worker"]["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert services["beat"]["deploy"]["replicas"] == 1


def test_compose_creates_the_artifact_bucket_before_the_app_starts():
    services = compose()["services"]
    script = " ".join(services["minio-init"]["entrypoint"])

    assert services["minio-init"]["image"].startswith("minio/mc")
    assert "mc mb --ignore-existing local/mlplatform" in script
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}


def test_compose_backing_services_have_health_checks_and_volumes():
    data = compose()
    for name in ["postgres", "redis", "minio"]:
        assert data["services"][name]["healthcheck"]["test"]
    assert set(data["volumes"]) == {"postgres-data", "redis-data", "minio-data"}


# --- Dockerfile and .dockerignore ------------------------------------------------------------------------------
def test_dockerfile_builds_a_slim_non_root_image_with_pinned_dependencies():
    dockerfile = (ROOT / "platform" / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and not line.startswith((" ", "#"))]

    assert re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE) == ["python:3.11-slim", "python:3.11-slim"]
    assert "uv pip install" in dockerfile and "-c constraints.txt -r pyproject.toml" in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert instructions.index("USER") > instructions.index("RUN")  # root only while building
    assert instructions[-1] == "CMD"


def test_dockerfile_collects_static_files_in_production_mode_with_a_build_only_key():
    dockerfile = (ROOT / "platform" / "Dockerfile").read_text()
    collect = next(block for block in dockerfile.split("\nRUN ") if "collectstatic" in block)

    assert "MLPLATFORM_ENV=production" in collect
    assert re.search(r"SECRET_KEY=\S+", collect)
    assert "ENV SECRET_KEY" not in dockerfile  # the build key is not baked into the image's environment


def test_dockerfile_runs_gunicorn_on_all_interfaces_port_8000():
    dockerfile = (ROOT / "platform" / "Dockerfile").read_text()
    cmd = dockerfile[dockerfile.index("CMD [") :]

    assert '"gunicorn", "config.wsgi:application"' in cmd
    assert '"--bind", "0.0.0.0:8000"' in cmd


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}

    assert {".env", ".venv", ".git", "var/"} <= ignored


# --- Kubernetes ------------------------------------------------------------------------------------------------
def test_every_kubernetes_manifest_parses_and_has_kind_and_name():
    docs = manifests()

    assert len(docs) >= 9
    assert all(doc.get("apiVersion") and doc.get("kind") for doc in docs)
    assert all(doc["metadata"].get("name") for doc in docs if doc["kind"] != "Kustomization")


def test_kustomization_lists_every_manifest_except_the_secret_example():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}

    assert set(kustomization["resources"]) == files
    assert kustomization["images"] == [{"name": IMAGE, "newName": "registry.example.com/mlplatform", "newTag": "0.1.0"}]


def test_every_kubernetes_container_runs_the_one_image_as_non_root():
    workloads = kind("Deployment") + kind("Job")

    assert {doc["metadata"]["name"] for doc in workloads} == {
        "mlplatform-web",
        "mlplatform-worker",
        "mlplatform-beat",
        "mlplatform-migrate",
    }
    for doc in workloads:
        assert [container["image"] for container in containers(doc)] == [IMAGE]
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in containers(doc):
            assert container["envFrom"] == [
                {"configMapRef": {"name": "mlplatform-config"}},
                {"secretRef": {"name": "mlplatform-secrets"}},
            ]


def test_kubernetes_web_has_a_service_and_health_probes_on_healthz():
    web = workload("mlplatform-web")
    service = next(doc for doc in kind("Service") if doc["metadata"]["name"] == "mlplatform-web")
    container = containers(web)[0]

    assert service["spec"]["selector"] == web["spec"]["template"]["metadata"]["labels"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        assert headers == {"Host": "portal.example.com", "X-Forwarded-Proto": "https"}


def test_kubernetes_worker_and_beat_commands_and_a_single_beat():
    worker, beat = workload("mlplatform-worker"), workload("mlplatform-beat")

    assert containers(worker)[0]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert containers(beat)[0]["command"] == ["celery", "-A", "config", "beat", "--loglevel", "INFO"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def test_kubernetes_migrate_job_runs_migrations():
    job = workload("mlplatform-migrate")

    assert containers(job)[0]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert containers(job)[0]["env"] == [  # as the owner role, not the app's role
        {
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "mlplatform-secrets", "key": "MIGRATE_DATABASE_URL"}},
        }
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_kubernetes_ingress_routes_the_portal_host_to_the_web_service_over_tls():
    ingress = kind("Ingress")[0]
    rule = ingress["spec"]["rules"][0]

    assert rule["host"] == "portal.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "mlplatform-web", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["hosts"] == ["portal.example.com"]


def test_kubernetes_configmap_and_secret_name_only_variables_something_reads():
    known = settings_env_vars() | {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "WEB_CONCURRENCY",
        "MIGRATE_DATABASE_URL",
    }
    config = kind("ConfigMap")[0]["data"]
    secret = kind("Secret")[0]["stringData"]

    assert config["MLPLATFORM_ENV"] == "production"
    assert "DEBUG" not in config and "SECRET_KEY" not in config
    assert set(config) - known == set()
    assert set(secret) - known == set()
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= set(secret)


# --- make run and the docs -------------------------------------------------------------------------------------
def test_procfile_dev_runs_the_portal_a_worker_and_beat():
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "platform" / "Procfile.dev").read_text().splitlines() if line.strip()
    )

    assert set(lines) == {"web", "worker", "beat"}
    assert "runserver 127.0.0.1:8000" in lines["web"]
    assert "celery -A config worker" in lines["worker"]
    assert "celery -A config beat" in lines["beat"]


@pytest.mark.parametrize("variable", sorted(settings_env_vars()))
def test_operations_doc_describes_every_environment_variable_the_settings_read(variable):
    doc = (ROOT / "docs" / "operations.md").read_text()

    assert f"`{variable}`" in doc
