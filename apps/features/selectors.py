"""Feature store reads: the catalog (platform-wide, for whoever may browse it), where a feature is used, the jobs,
and what the worker needs to find a feature version's partitions."""

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from apps.accounts.permissions import Action, can
from apps.datasets.models import DatasetVersion, IngestionJob
from apps.features.choices import JobStatus
from apps.features.models import (
    Entity,
    Feature,
    FeatureVersion,
    FeatureView,
    MaterialisationJob,
    OnlineSync,
    PersonalFeatureException,
    TrainingSet,
)
from apps.projects.models import Project


def _require_catalog(actor) -> None:
    if not can(actor, Action.FEATURE_VIEW):
        raise Http404("No such page.")


def feature_list(*, actor, filters: dict[str, Any] | None = None) -> QuerySet[Feature]:
    """Features matching `filters` (q: name or description, tag, owner: username, entity: name, view: name)."""
    _require_catalog(actor)
    filters = filters or {}
    features = Feature.objects.select_related("view__entity", "owner").prefetch_related(
        Prefetch("versions", queryset=FeatureVersion.objects.order_by("-number"))
    )
    if text := str(filters.get("q") or "").strip():
        features = features.filter(Q(name__icontains=text) | Q(description__icontains=text))
    if tag := str(filters.get("tag") or "").strip().lower():
        features = features.filter(Q(tags__contains=[tag]) | Q(view__tags__contains=[tag]))
    if owner := str(filters.get("owner") or "").strip():
        features = features.filter(owner__username=owner)
    if entity := str(filters.get("entity") or "").strip():
        features = features.filter(view__entity__name=entity)
    if view := str(filters.get("view") or "").strip():
        features = features.filter(view__name=view)
    return features.order_by("view__name", "name")


def feature_get(*, actor, pk) -> Feature:
    _require_catalog(actor)
    try:
        return Feature.objects.select_related("view__entity", "owner").get(pk=pk)
    except (Feature.DoesNotExist, ValueError) as exc:
        raise Http404("No such feature.") from exc


def feature_version_get(*, actor, pk) -> FeatureVersion:
    _require_catalog(actor)
    try:
        return FeatureVersion.objects.select_related("feature__view__entity", "dataset__project", "created_by").get(
            pk=pk
        )
    except (FeatureVersion.DoesNotExist, ValueError) as exc:
        raise Http404("No such feature version.") from exc


def feature_versions(*, feature: Feature) -> QuerySet[FeatureVersion]:
    return feature.versions.select_related("dataset__project", "created_by").order_by("-number")


def entity_list(*, actor) -> QuerySet[Entity]:
    _require_catalog(actor)
    return Entity.objects.order_by("name")


def view_list(*, actor) -> QuerySet[FeatureView]:
    _require_catalog(actor)
    return FeatureView.objects.select_related("entity", "owner").order_by("name")


def view_get(*, actor, name: str = "", pk=None) -> FeatureView:
    _require_catalog(actor)
    lookup = {"pk": pk} if pk is not None else {"name": name}
    try:
        return FeatureView.objects.select_related("entity", "owner").get(**lookup)
    except (FeatureView.DoesNotExist, ValueError) as exc:
        raise Http404("No such feature view.") from exc


def latest_materialisation(*, feature_version: FeatureVersion) -> MaterialisationJob | None:
    return feature_version.materialisations.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at").first()


def freshness(*, feature_version: FeatureVersion):
    """The newest event time materialised for this version (None: never materialised)."""
    jobs = feature_version.materialisations.filter(status=JobStatus.SUCCEEDED, max_event_timestamp__isnull=False)
    newest = jobs.order_by("-max_event_timestamp").values_list("max_event_timestamp", flat=True).first()
    return newest


def materialisation_list(*, feature_version: FeatureVersion) -> QuerySet[MaterialisationJob]:
    return feature_version.materialisations.select_related("dataset_version__dataset").order_by("-queued_at")


def materialisation_get(*, actor, pk) -> MaterialisationJob:
    _require_catalog(actor)
    try:
        return MaterialisationJob.objects.select_related("feature_version__feature").get(pk=pk)
    except (MaterialisationJob.DoesNotExist, ValueError) as exc:
        raise Http404("No such materialisation.") from exc


def feature_usage(*, feature: Feature, actor) -> dict[str, list]:
    """Where a feature's versions are used: training sets, the experiments launched on their results, the model
    versions registered from those experiments' runs and the deployments serving them. Only what the actor may see
    in each project is listed."""
    from apps.deployments.models import Deployment
    from apps.experiments.models import Experiment
    from apps.registry.models import ModelVersion

    training_sets = [
        training_set
        for training_set in TrainingSet.objects.filter(items__feature_version__feature=feature)
        .select_related("project", "result_version__dataset")
        .distinct()
        if can(actor, Action.DATASET_VIEW, training_set.project)
    ]
    version_ids = [ts.result_version_id for ts in training_sets if ts.result_version_id]
    experiments = [
        experiment
        for experiment in Experiment.objects.filter(dataset_version_id__in=version_ids).select_related("project")
        if can(actor, Action.EXPERIMENT_VIEW, experiment.project)
    ]
    model_versions = [
        version
        for version in ModelVersion.objects.filter(run__experiment__in=experiments).select_related(
            "registered_model__project"
        )
        if can(actor, Action.MODEL_VIEW, version.registered_model.project)
    ]
    deployments = [
        deployment
        for deployment in Deployment.objects.filter(routes__version__in=model_versions).distinct()
        if can(actor, Action.DEPLOYMENT_VIEW, deployment.project)
    ]
    return {
        "training_sets": training_sets,
        "experiments": experiments,
        "model_versions": model_versions,
        "deployments": deployments,
    }


def training_set_list(*, actor, project: Project | None = None) -> QuerySet[TrainingSet]:
    visible = [p.pk for p in Project.objects.all() if can(actor, Action.DATASET_VIEW, p)]
    training_sets = TrainingSet.objects.filter(project_id__in=visible)
    if project is not None:
        training_sets = training_sets.filter(project=project)
    return training_sets.select_related("project", "spine_version__dataset", "result_version__dataset")


def training_set_get(*, actor, pk) -> TrainingSet:
    try:
        training_set = TrainingSet.objects.select_related(
            "project", "spine_version__dataset", "result_version__dataset", "output_dataset", "ingestion_job"
        ).get(pk=pk)
    except (TrainingSet.DoesNotExist, ValueError) as exc:
        raise Http404("No such training set.") from exc
    if not can(actor, Action.DATASET_VIEW, training_set.project):
        raise Http404("No such training set.")
    return training_set


def training_set_items(*, training_set: TrainingSet):
    return training_set.items.select_related("feature_version__feature__view__entity").order_by("output_name")


def feature_versions_for_training(*, project: Project) -> QuerySet[FeatureVersion]:
    """Materialised feature versions, each marked with whether this project holds an exception for it."""
    exception = PersonalFeatureException.objects.filter(project=project, feature_version=OuterRef("pk"))
    return (
        FeatureVersion.objects.filter(materialisations__status=JobStatus.SUCCEEDED)
        .annotate(has_exception=Exists(exception))
        .select_related("feature__view__entity")
        .distinct()
        .order_by("feature__view__name", "feature__name", "-number")
    )


def spine_versions(*, project: Project) -> QuerySet[DatasetVersion]:
    return (
        DatasetVersion.objects.filter(dataset__project=project)
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )


def online_sync_latest(*, view: FeatureView) -> OnlineSync | None:
    return view.online_syncs.order_by("-queued_at").first()


def online_sync_get(*, actor, pk) -> OnlineSync:
    _require_catalog(actor)
    try:
        return OnlineSync.objects.select_related("view").get(pk=pk)
    except (OnlineSync.DoesNotExist, ValueError) as exc:
        raise Http404("No such sync.") from exc


# --- For the worker -----------------------------------------------------------------------------------------------
def partition_keys(*, feature_version_id) -> list[str]:
    """Every Parquet partition of a feature version, oldest range first (its succeeded materialisations)."""
    jobs = MaterialisationJob.objects.filter(feature_version_id=feature_version_id, status=JobStatus.SUCCEEDED)
    keys: list[str] = []
    for artifact_keys in jobs.order_by("range_end").values_list("artifact_keys", flat=True):
        keys.extend(artifact_keys)
    return keys


def training_set_inputs(*, training_set_id) -> list[dict[str, Any]]:
    """[{output_name, feature_version_id, join_keys, max_age_seconds, feature, number}] of a training set."""
    items = TrainingSet.objects.get(pk=training_set_id).items.select_related("feature_version__feature__view__entity")
    return [
        {
            "output_name": item.output_name,
            "feature_version_id": str(item.feature_version_id),
            "feature": str(item.feature_version.feature),
            "number": item.feature_version.number,
            "join_keys": list(item.feature_version.feature.view.entity.join_keys),
            "max_age_seconds": item.max_age_seconds,
        }
        for item in items
    ]


def ingestion_job_for_worker(*, job_id) -> IngestionJob:
    """The ingestion job a training set handed its rows to (no visibility: the worker acts for the platform)."""
    return IngestionJob.objects.get(pk=job_id)


def online_view_features(*, view_id) -> list[dict[str, Any]]:
    """The newest materialised version of every feature of a view: [{name, feature_version_id}]."""
    result = []
    for feature in Feature.objects.filter(view_id=view_id).order_by("name"):
        version = feature.versions.filter(materialisations__status=JobStatus.SUCCEEDED).order_by("-number").first()
        if version is not None:
            result.append({"name": feature.name, "feature_version_id": str(version.pk)})
    return result


# --- Online reads -------------------------------------------------------------------------------------------------
MAX_ONLINE_ENTITIES = 1000


def online_values(*, actor, view_name: str, entity_rows: list[dict], features: list[str] | None = None) -> dict:
    """The online values of `features` (default: every feature of the view) for each entity row, with freshness:
    {"view", "results": [{"entity", "features", "event_timestamp", "age_seconds"}]}.

    Reading a feature needs ONLINE_FEATURES_READ in the project of its source dataset (its newest version's)."""
    from django.core.exceptions import PermissionDenied
    from django.utils import timezone

    from apps.accounts.permissions import require
    from apps.core.exceptions import ApplicationError
    from apps.features import engine

    view = FeatureView.objects.select_related("entity").filter(name=view_name).first()
    if view is None:
        raise ApplicationError("No such feature view.", errors={"view": ["No such feature view."]}, status=404)
    by_name = {feature.name: feature for feature in view.features.all()}
    names = list(features) if features else sorted(by_name)
    if unknown := [name for name in names if name not in by_name]:
        raise ApplicationError("Unknown features.", errors={"features": [f"Not in {view.name}: {', '.join(unknown)}."]})
    for name in names:
        newest = by_name[name].versions.select_related("dataset__project").order_by("-number").first()
        if newest is None or not can(actor, Action.ONLINE_FEATURES_READ, newest.dataset.project):
            if newest is None:
                raise PermissionDenied("The feature has no version.")
            require(actor, Action.ONLINE_FEATURES_READ, newest.dataset.project)
    keys = list(view.entity.join_keys)
    rows = _entity_rows(entity_rows, keys)
    stored = engine.read_online(engine.online_client(), feature_view=view.name, entity_rows=rows, features=names)
    now = timezone.now()
    results = []
    for row, values in zip(rows, stored, strict=True):
        moment = values.pop("event_timestamp", None)
        results.append(
            {
                "entity": row,
                "features": values,
                "event_timestamp": moment,
                "age_seconds": round((now - moment).total_seconds(), 3) if moment else None,
            }
        )
    return {"view": view.name, "results": results}


def _entity_rows(entity_rows: list[dict], keys: list[str]) -> list[dict]:
    """Each row's key values in the view's key order (as text: Redis keys are text either way)."""
    from apps.core.exceptions import ApplicationError

    if not isinstance(entity_rows, list) or not entity_rows or len(entity_rows) > MAX_ONLINE_ENTITIES:
        message = f"Give 1 to {MAX_ONLINE_ENTITIES} entities."
        raise ApplicationError(message, errors={"entities": [message]})
    rows = []
    for row in entity_rows:
        if not isinstance(row, dict) or any(row.get(key) in (None, "") for key in keys):
            message = f"Every entity needs its key(s): {', '.join(keys)}."
            raise ApplicationError(message, errors={"entities": [message]})
        rows.append({key: str(row[key]) for key in keys})
    return rows
