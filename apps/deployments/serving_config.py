"""The model server's deployment file (workers.serving.config) made from a deployment's routes: the one place that
maps portal rows to what a server loads.

The server's model name is the deployment's name (as KServe names a model after its InferenceService), so clients
call /v2/models/<deployment name>/infer; a version is the registry's version number as a string.
"""

from typing import Any

from django.conf import settings

from apps.deployments.choices import RouteRole, Strategy
from apps.registry.models import ModelVersion


def version_entry(version: ModelVersion, *, model_name: str) -> dict[str, Any]:
    """One `models[]` entry: where the version's artifact is, its recorded digest and signature, its input signature."""
    return {
        "name": model_name,
        "version": str(version.number),
        "artifact_store": settings.ARTIFACT_STORE,
        "artifact_key": version.artifact_key,
        "sha256": version.artifact_sha256,
        "signature": version.artifact_signature,
        "input_signature": version.input_signature,
        "problem_type": version.run.spec["problem_type"],
        "algorithm": version.run.algorithm,
    }


def traffic_section(*, strategy: str, routes: list, sticky_key: str = "") -> dict[str, Any]:
    """`traffic` for the server; `routes` are DeploymentRoute rows (or anything with version, role, weight, variant)."""
    live = [route for route in routes if route.role == RouteRole.LIVE]
    section: dict[str, Any] = {
        "strategy": strategy,
        "routes": [
            {"version": str(route.version.number), "weight": route.weight, "variant": route.variant} for route in live
        ],
    }
    if strategy == Strategy.AB:
        section["sticky_key"] = sticky_key
    shadow = [route for route in routes if route.role == RouteRole.SHADOW]
    if shadow:
        section["shadow"] = {"version": str(shadow[0].version.number)}
    return section


def deployment_config(deployment, routes: list) -> dict[str, Any]:
    """The whole deployment file. The default version (what /invocations and unrouted metadata use) is the live route
    with the largest weight."""
    live = sorted((route for route in routes if route.role == RouteRole.LIVE), key=lambda route: -route.weight)
    config = {
        "models": [version_entry(route.version, model_name=deployment.name) for route in routes],
        "default": {"name": deployment.name, "version": str(live[0].version.number)},
        "traffic": traffic_section(strategy=deployment.strategy, routes=routes, sticky_key=deployment.sticky_key),
    }
    if deployment.feature_view_id:
        config["features"] = features_section(deployment.feature_view, routes)
    return config


def fetched_columns(view, versions) -> list[str]:
    """The view's features that are inputs of any of `versions` (what the server fetches for them)."""
    inputs = {column["name"] for version in versions for column in version.input_signature.get("columns", [])}
    return sorted(name for name in view.features.values_list("name", flat=True) if name in inputs)


def features_section(view, routes: list) -> dict[str, Any]:
    """`features` for the server: the view's entity keys and the features its routed versions take as inputs."""
    return {
        "view": view.name,
        "entity_keys": list(view.entity.join_keys),
        "columns": fetched_columns(view, [route.version for route in routes]),
    }
