"""The feature store pages: discovery, a feature's page (versions, freshness, statistics, usage), the define form,
materialisation with a status that polls until the job ends, the training-set builder and its page (which links to
the experiment form preselected with the result), and the online sync button."""

import uuid

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.datasets.models import Dataset
from apps.datasets.selectors import dataset_list
from apps.features import selectors, services
from apps.features.choices import ACTIVE_STATUSES
from apps.features.forms import ExceptionGrantForm, FeatureDefineForm, TrainingSetForm
from apps.projects.models import Project
from apps.projects.selectors import project_get

INVALID = 400
FILTERS = ("q", "tag", "owner", "entity", "view")


def _status(error: ApplicationError) -> int:
    return error.status if error.status >= 400 else INVALID


class FeatureListView(LoginRequiredMixin, View):
    """GET /features/?q=&tag=&owner=&entity=&view= — the catalog, searchable and paginated."""

    def get(self, request):
        filters = {key: request.GET.get(key, "").strip() for key in FILTERS}
        features = selectors.feature_list(actor=request.user, filters=filters)
        context = {
            "page_obj": paginate(request, features),
            "filters": filters,
            "entities": selectors.entity_list(actor=request.user),
            "views": selectors.view_list(actor=request.user),
            "training_sets": selectors.training_set_list(actor=request.user)[:10],
            "may_define": services.may_define_somewhere(request.user),
        }
        return render(request, "features/feature_list.html", context)


def _version_rows(feature, actor) -> list[dict]:
    rows = []
    for version in selectors.feature_versions(feature=feature):
        jobs = list(selectors.materialisation_list(feature_version=version)[:5])
        rows.append(
            {
                "version": version,
                "freshness": selectors.freshness(feature_version=version),
                "latest": selectors.latest_materialisation(feature_version=version),
                "jobs": jobs,
                "active_job": next((job for job in jobs if job.status in ACTIVE_STATUSES), None),
                "may_materialise": can(actor, Action.FEATURE_DEFINE, version.dataset.project),
            }
        )
    return rows


def _exception_projects(actor):
    visible = [
        project.pk for project in Project.objects.all() if can(actor, Action.PERSONAL_FEATURE_EXCEPTION, project)
    ]
    return Project.objects.filter(pk__in=visible).order_by("name")


class FeatureDetailView(LoginRequiredMixin, View):
    """GET /features/<uuid>/ — the definition of every version, freshness, statistics, and where it is used."""

    def get(self, request, pk):
        feature = selectors.feature_get(actor=request.user, pk=pk)
        projects = _exception_projects(request.user)
        context = {
            "feature": feature,
            "rows": _version_rows(feature, request.user),
            "usage": selectors.feature_usage(feature=feature, actor=request.user),
            "sync": selectors.online_sync_latest(view=feature.view),
            "exception_form": ExceptionGrantForm(projects=projects) if projects.exists() else None,
        }
        return render(request, "features/feature_detail.html", context)


def _definable_datasets(actor):
    visible = dataset_list(actor=actor).select_related("project")
    allowed = [dataset.pk for dataset in visible if can(actor, Action.FEATURE_DEFINE, dataset.project)]
    return Dataset.objects.filter(pk__in=allowed).select_related("project").order_by("project__name", "name")


class FeatureDefineView(LoginRequiredMixin, View):
    """GET/POST /features/define/ — define a feature (or a new version of one)."""

    def _form(self, request, **kwargs):
        return FeatureDefineForm(
            views=selectors.view_list(actor=request.user), datasets=_definable_datasets(request.user), **kwargs
        )

    def get(self, request):
        initial = {key: request.GET[key] for key in ("view", "name") if key in request.GET}
        return render(request, "features/feature_define.html", {"form": self._form(request, initial=initial)})

    def post(self, request):
        form = self._form(request, data=request.POST)
        if not form.is_valid():
            return render(request, "features/feature_define.html", {"form": form}, status=INVALID)
        try:
            version = services.feature_define(actor=request.user, **form.service_arguments())
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return render(request, "features/feature_define.html", {"form": form}, status=_status(error))
        messages.success(request, f"{version} is defined.")
        return redirect("features:detail", pk=version.feature_id)


class MaterialiseView(LoginRequiredMixin, View):
    """POST /features/versions/<uuid>/materialise/ — queue the next time range; answers the polling status."""

    def post(self, request, pk):
        version = selectors.feature_version_get(actor=request.user, pk=pk)
        try:
            job = services.materialisation_request(actor=request.user, feature_version=version)
        except ApplicationError as error:
            if request.htmx:
                context = {"job": None, "error": error.message, "version": version}
                return render(request, "features/partials/materialisation_status.html", context)
            messages.error(request, error.message)
            return redirect("features:detail", pk=version.feature_id)
        if request.htmx:
            return render(request, "features/partials/materialisation_status.html", {"job": job, "version": version})
        return redirect("features:detail", pk=version.feature_id)


class MaterialisationStatusView(LoginRequiredMixin, View):
    """GET /features/materialisations/<uuid>/status/ — the job's status partial (polls itself until it ends)."""

    def get(self, request, pk):
        job = selectors.materialisation_get(actor=request.user, pk=pk)
        context = {"job": job, "version": job.feature_version}
        return render(request, "features/partials/materialisation_status.html", context)


class OnlineSyncView(LoginRequiredMixin, View):
    """POST /features/views/<uuid>/sync/ — queue an online sync of the view."""

    def post(self, request, pk):
        view = selectors.view_get(actor=request.user, pk=pk)
        try:
            sync = services.online_sync_request(actor=request.user, view=view)
            messages.success(request, f"The online sync of {view.name} is {sync.get_status_display().lower()}.")
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect(request.POST.get("next") or reverse("features:list"))


class ExceptionGrantView(LoginRequiredMixin, View):
    """POST /features/versions/<uuid>/exception/ — a compliance officer allows a personal feature in a project."""

    def post(self, request, pk):
        version = selectors.feature_version_get(actor=request.user, pk=pk)
        form = ExceptionGrantForm(data=request.POST, projects=_exception_projects(request.user))
        if form.is_valid():
            try:
                services.personal_feature_exception_grant(
                    actor=request.user,
                    project=form.cleaned_data["project"],
                    feature_version=version,
                    reason=form.cleaned_data["reason"],
                )
                messages.success(request, f"{version} is allowed in {form.cleaned_data['project'].name}.")
            except ApplicationError as error:
                messages.error(request, error.message)
        else:
            messages.error(request, "Choose a project and give a reason.")
        return redirect("features:detail", pk=version.feature_id)


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


class TrainingSetCreateView(LoginRequiredMixin, View):
    """GET/POST /features/training-sets/new/?project=<uuid> — build a point-in-time correct training set."""

    def _project(self, request):
        project_id = _uuid_or_none(request.GET.get("project") or request.POST.get("project"))
        if project_id is None:
            raise Http404("Choose a project.")
        project = project_get(actor=request.user, pk=project_id)
        require(request.user, Action.TRAINING_SET_BUILD, project)
        return project

    def _form(self, project, **kwargs):
        return TrainingSetForm(
            spine_versions=selectors.spine_versions(project=project),
            feature_versions=selectors.feature_versions_for_training(project=project),
            **kwargs,
        )

    def _render(self, request, project, form, status=200):
        return render(request, "features/training_set_form.html", {"project": project, "form": form}, status=status)

    def get(self, request):
        project = self._project(request)
        return self._render(request, project, self._form(project))

    def post(self, request):
        project = self._project(request)
        form = self._form(project, data=request.POST)
        if not form.is_valid():
            return self._render(request, project, form, status=INVALID)
        try:
            training_set = services.training_set_build(actor=request.user, project=project, **form.service_arguments())
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, project, form, status=_status(error))
        return redirect("features:training_set", pk=training_set.pk)


class TrainingSetProjectsView(LoginRequiredMixin, View):
    """GET /features/training-sets/ — training sets the user may see, and the projects they may build one in."""

    def get(self, request):
        projects = [p for p in Project.objects.order_by("name") if can(request.user, Action.TRAINING_SET_BUILD, p)]
        context = {
            "page_obj": paginate(request, selectors.training_set_list(actor=request.user)),
            "projects": projects,
        }
        return render(request, "features/training_set_list.html", context)


class TrainingSetDetailView(LoginRequiredMixin, View):
    """GET /features/training-sets/<uuid>/ — status (polls while building), lineage and the experiment link."""

    def get(self, request, pk):
        training_set = selectors.training_set_get(actor=request.user, pk=pk)
        context = {
            "training_set": training_set,
            "items": selectors.training_set_items(training_set=training_set),
            "active": training_set.status in ACTIVE_STATUSES,
            "may_launch": can(request.user, Action.EXPERIMENT_LAUNCH, training_set.project),
        }
        template = "features/partials/training_set_status.html" if request.htmx else "features/training_set_detail.html"
        return render(request, template, context)
