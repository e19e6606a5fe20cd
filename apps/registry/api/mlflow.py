"""The read-only subset of MLflow's model registry REST API, under /api/2.0/mlflow/, so MLflow clients can read our
registry: registered-models/get and /search, model-versions/get and /search, registered-models/alias.

Shapes follow MLflow's protobuf messages (RegisteredModel, ModelVersion, RegisteredModelAlias): versions are strings,
timestamps milliseconds, stages "None", "Staging", "Production", "Archived", statuses "PENDING_REGISTRATION",
"READY", "FAILED_REGISTRATION"; the production and staging versions are also the aliases "production" and "staging"
(staging: the newest version in staging). Errors are {"error_code": ..., "message": ...}.

Names: MLflow names a model globally, ours are unique per project. A caller sees only the models of projects they may
see; a plain name that matches more than one of those is refused (INVALID_PARAMETER_VALUE) and can be written
"<project uuid>/<model name>". Answers give a model's plain name, or the qualified one when the caller sees
another model of that name. Authentication is the rest of the API's (personal token or session).
"""

import re
import uuid

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.artifacts import artifact_store
from apps.registry.choices import Stage, VersionStatus
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.selectors import registered_model_list, visible_project_ids

STAGE_NAMES = {Stage.NONE: "None", Stage.STAGING: "Staging", Stage.PRODUCTION: "Production", Stage.ARCHIVED: "Archived"}
STATUS_NAMES = {
    VersionStatus.PENDING: "PENDING_REGISTRATION",
    VersionStatus.READY: "READY",
    VersionStatus.FAILED: "FAILED_REGISTRATION",
}
ALIAS_STAGES = {"production": Stage.PRODUCTION, "staging": Stage.STAGING}
DEFAULT_MAX_RESULTS = 100
LARGEST_MAX_RESULTS = 1000
# name = 'x' | name LIKE 'x%' | name ILIKE '%x%' | run_id = '...'  (MLflow's search filter, the parts we support)
_FILTER = re.compile(
    r"""^\s*(?P<key>name|run_id)\s*(?P<op>=|LIKE|ILIKE)\s*(?P<quote>['"])(?P<value>.*)(?P=quote)\s*$"""
)


class MlflowError(Exception):
    def __init__(self, code: str, message: str, http_status: int):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


def _missing(message: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message, status.HTTP_404_NOT_FOUND)


def _invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message, status.HTTP_400_BAD_REQUEST)


def _millis(moment) -> int:
    return int(moment.timestamp() * 1000)


# --- Finding models -------------------------------------------------------------------------------------------------
def _visible_models(actor):
    versions = ModelVersion.objects.select_related("created_by").order_by("number")
    return registered_model_list(actor=actor).prefetch_related(Prefetch("versions", queryset=versions))


def _display_names(models: list[RegisteredModel], actor) -> dict:
    """Each model's name as this caller must write it (qualified when another visible model has the same name)."""
    visible = RegisteredModel.objects.filter(name__in={model.name for model in models})
    project_ids = visible_project_ids(actor=actor)
    if project_ids is not None:
        visible = visible.filter(project_id__in=project_ids)
    counts = dict(visible.order_by().values("name").annotate(count=Count("pk")).values_list("name", "count"))
    return {
        model.pk: f"{model.project_id}/{model.name}" if counts.get(model.name, 0) > 1 else model.name
        for model in models
    }


def _model_named(actor, name: str) -> RegisteredModel:
    if not name:
        raise _invalid("Missing value for required parameter 'name'.")
    models = _visible_models(actor)
    project_part, _, model_part = name.partition("/")
    try:
        project_id = uuid.UUID(project_part) if model_part else None
    except ValueError:
        project_id = None
    found = list(models.filter(project_id=project_id, name=model_part) if project_id else models.filter(name=name))
    if not found:
        raise _missing(f"Registered Model with name={name} not found")
    if len(found) > 1:
        raise _invalid(
            f"More than one registered model you can see is named {name!r}; write it as '<project uuid>/{name}' "
            f"(projects: {', '.join(str(model.project_id) for model in found)})."
        )
    return found[0]


# --- MLflow shapes --------------------------------------------------------------------------------------------------
def _source(version: ModelVersion) -> str:
    return f"{artifact_store().uri.rstrip('/')}/{version.artifact_key}" if version.artifact_key else ""


def _aliases_of(versions: list[ModelVersion]) -> list[dict]:
    aliases = []
    for alias, stage in ALIAS_STAGES.items():
        in_stage = [version for version in versions if version.stage == stage]
        if in_stage:
            aliases.append({"alias": alias, "version": str(max(version.number for version in in_stage))})
    return aliases


def _version_json(version: ModelVersion, name: str, aliases: list[dict]) -> dict:
    return {
        "name": name,
        "version": str(version.number),
        "creation_timestamp": _millis(version.created_at),
        "last_updated_timestamp": _millis(version.updated_at),
        "user_id": version.created_by.get_username(),
        "current_stage": STAGE_NAMES[version.stage],
        "description": version.description,
        "source": _source(version),
        "run_id": str(version.run_id),
        "status": STATUS_NAMES[version.status],
        "status_message": version.status_reason,
        "tags": [{"key": tag, "value": ""} for tag in version.tags or []],
        "aliases": [entry["alias"] for entry in aliases if entry["version"] == str(version.number)],
    }


def _model_json(model: RegisteredModel, name: str) -> dict:
    versions = list(model.versions.all())
    aliases = _aliases_of(versions)
    latest: dict[str, ModelVersion] = {}
    for version in versions:  # ordered by number: the last one of each stage wins
        if version.status == VersionStatus.READY:
            latest[version.stage] = version
    return {
        "name": name,
        "creation_timestamp": _millis(model.created_at),
        "last_updated_timestamp": _millis(model.updated_at),
        "user_id": model.created_by.get_username(),
        "description": model.description,
        "latest_versions": [_version_json(version, name, aliases) for version in latest.values()],
        "tags": [],
        "aliases": aliases,
    }


# --- Search parameters ----------------------------------------------------------------------------------------------
def _page(request) -> tuple[int, int]:
    """(offset, max_results) from page_token and max_results."""
    try:
        max_results = int(request.query_params.get("max_results") or DEFAULT_MAX_RESULTS)
    except ValueError as error:
        raise _invalid("max_results must be a whole number.") from error
    if not 1 <= max_results <= LARGEST_MAX_RESULTS:
        raise _invalid(f"max_results must be between 1 and {LARGEST_MAX_RESULTS}.")
    token = request.query_params.get("page_token") or "0"
    if not token.isdigit():
        raise _invalid("Invalid page_token.")
    return int(token), max_results


def _like(pattern: str) -> re.Pattern:
    parts = [".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern]
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


def _parsed_filter(text: str, keys: set[str]) -> tuple[str, str, str] | None:
    if not text.strip():
        return None
    match = _FILTER.match(text)
    if match is None or match["key"] not in keys:
        supported = " or ".join(f"{key} = '...'" for key in sorted(keys))
        raise _invalid(f"Unsupported filter {text!r}: use {supported} (name also with LIKE / ILIKE).")
    return match["key"], match["op"], match["value"]


def _name_matches(display: str, model: RegisteredModel, op: str, value: str) -> bool:
    if op == "=":
        return value in (display, model.name, f"{model.project_id}/{model.name}")
    pattern = _like(value.lower() if op == "ILIKE" else value)
    candidate = display.lower() if op == "ILIKE" else display
    return bool(pattern.match(candidate))


def _page_answer(key: str, items: list, offset: int, max_results: int) -> dict:
    answer: dict = {key: items[offset : offset + max_results]}
    if offset + max_results < len(items):
        answer["next_page_token"] = str(offset + max_results)
    return answer


# --- Views ----------------------------------------------------------------------------------------------------------
class MlflowView(APIView):
    """Answers every error, authentication included, in MLflow's shape."""

    def handle_exception(self, exc):
        if isinstance(exc, MlflowError):
            return Response({"error_code": exc.code, "message": exc.message}, status=exc.http_status)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            body = {"error_code": "UNAUTHENTICATED", "message": str(exc.detail)}
            return Response(body, status=status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Token"})
        if isinstance(exc, exceptions.PermissionDenied | DjangoPermissionDenied):
            return Response({"error_code": "PERMISSION_DENIED", "message": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return super().handle_exception(exc)


_NAME = OpenApiParameter("name", str, description="Model name, or '<project uuid>/<name>' when it is ambiguous.")
_SEARCH = [
    OpenApiParameter("filter", str, description="name = 'x', name LIKE 'x%', name ILIKE '%x%' (versions: run_id)."),
    OpenApiParameter("max_results", int),
    OpenApiParameter("page_token", str),
]


class RegisteredModelGetView(MlflowView):
    @extend_schema(summary="MLflow: get a registered model", parameters=[_NAME], responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        model = _model_named(request.user, request.query_params.get("name", ""))
        return Response({"registered_model": _model_json(model, _display_names([model], request.user)[model.pk])})


class RegisteredModelSearchView(MlflowView):
    @extend_schema(summary="MLflow: search registered models", parameters=_SEARCH, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        offset, max_results = _page(request)
        condition = _parsed_filter(request.query_params.get("filter", ""), {"name"})
        models = list(_visible_models(request.user).order_by("name", "project_id"))
        names = _display_names(models, request.user)
        if condition is not None:
            _, op, value = condition
            models = [model for model in models if _name_matches(names[model.pk], model, op, value)]
        items = [_model_json(model, names[model.pk]) for model in models]
        return Response(_page_answer("registered_models", items, offset, max_results))


class ModelVersionGetView(MlflowView):
    @extend_schema(
        summary="MLflow: get a model version",
        parameters=[_NAME, OpenApiParameter("version", str)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        model = _model_named(request.user, request.query_params.get("name", ""))
        number = request.query_params.get("version", "")
        if not number.isdigit():
            raise _invalid("Missing or invalid value for required parameter 'version'.")
        versions = list(model.versions.all())
        version = next((v for v in versions if v.number == int(number)), None)
        name = _display_names([model], request.user)[model.pk]
        if version is None:
            raise _missing(f"Model Version (name={name}, version={number}) not found")
        return Response({"model_version": _version_json(version, name, _aliases_of(versions))})


class ModelVersionSearchView(MlflowView):
    @extend_schema(summary="MLflow: search model versions", parameters=_SEARCH, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        offset, max_results = _page(request)
        condition = _parsed_filter(request.query_params.get("filter", ""), {"name", "run_id"})
        models = list(_visible_models(request.user).order_by("name", "project_id"))
        names = _display_names(models, request.user)
        items = []
        for model in models:
            if (
                condition is not None
                and condition[0] == "name"
                and not _name_matches(names[model.pk], model, *condition[1:])
            ):
                continue
            versions = list(model.versions.all())
            aliases = _aliases_of(versions)
            for version in reversed(versions):  # newest first
                if condition is not None and condition[0] == "run_id" and str(version.run_id) != condition[2]:
                    continue
                items.append(_version_json(version, names[model.pk], aliases))
        return Response(_page_answer("model_versions", items, offset, max_results))


class RegisteredModelAliasView(MlflowView):
    @extend_schema(
        summary="MLflow: the version an alias (production, staging) points to",
        parameters=[_NAME, OpenApiParameter("alias", str)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        model = _model_named(request.user, request.query_params.get("name", ""))
        alias = request.query_params.get("alias", "")
        name = _display_names([model], request.user)[model.pk]
        versions = list(model.versions.all())
        aliases = _aliases_of(versions)
        target = next((entry["version"] for entry in aliases if entry["alias"] == alias), None)
        if target is None:
            raise _missing(f"Registered model alias {alias} not found.")
        version = next(v for v in versions if str(v.number) == target)
        return Response({"model_version": _version_json(version, name, aliases)})
