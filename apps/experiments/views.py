"""Experiment pages: launch, the experiment's leaderboard, a run's live progress and results, side-by-side comparison.

Reads go through apps/experiments/selectors.py (what the user may not see is a 404), writes through
apps/experiments/services.py; training happens on workers. The run page polls a small status partial while the run
is active and reloads itself once when the run finishes, so results appear without a manual refresh.
"""

import uuid

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.datasets.selectors import version_effective_columns
from apps.experiments.choices import ExperimentStatus, RunStatus
from apps.experiments.forms import LaunchForm
from apps.experiments.presenters import run_charts, run_summary_rows
from apps.experiments.selectors import (
    experiment_get,
    experiment_list,
    launchable_versions,
    leaderboard,
    run_get,
    run_log_lines,
    runs_compare,
)
from apps.experiments.services import experiment_cancel, experiment_launch, run_cancel
from apps.projects.selectors import project_get, project_visible_queryset
from workers.ml.training.spec import LOWER_IS_BETTER  # stdlib only: the portal validates specs with it

INVALID = 400
LOG_TAIL = 50
ACTIVE_EXPERIMENT_STATUSES = {ExperimentStatus.QUEUED, ExperimentStatus.RUNNING}


def _error_status(error: ApplicationError) -> int:
    return error.status if 400 <= error.status < 600 else INVALID


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


class ExperimentListView(LoginRequiredMixin, View):
    def get(self, request):
        projects = project_visible_queryset(actor=request.user).order_by("name")
        project_id = _uuid_or_none(request.GET.get("project"))
        project = project_get(actor=request.user, pk=project_id) if project_id else None
        experiments = experiment_list(actor=request.user, project=project)
        launch_projects = [p for p in projects if can(request.user, Action.EXPERIMENT_LAUNCH, p)]
        context = {
            "page_obj": paginate(request, experiments),
            "projects": projects,
            "project": project,
            "launch_projects": launch_projects,
        }
        return render(request, "experiments/experiment_list.html", context)


class ExperimentLaunchView(LoginRequiredMixin, View):
    """GET /experiments/new/?project=<uuid>[&version=<uuid>]; choosing a version reloads the form with its columns."""

    def get(self, request):
        project = self._project(request)
        versions = list(launchable_versions(project=project))
        version = self._version(versions, request.GET.get("version"))
        initial = {"dataset_version": str(version.pk) if version else ""}
        form = self._form(project, versions, version, initial=initial)
        return self._render(request, project, form, version)

    def post(self, request):
        project = self._project(request)
        versions = list(launchable_versions(project=project))
        version = self._version(versions, request.POST.get("dataset_version"))
        form = self._form(project, versions, version, data=request.POST)
        if not form.is_valid() or version is None:
            if version is None and "dataset_version" not in form.errors:
                form.add_error("dataset_version", "Choose a dataset version.")
            return self._render(request, project, form, version, status=INVALID)
        try:
            experiment = experiment_launch(
                project=project,
                actor=request.user,
                dataset_version=version,
                data=form.spec_data(),
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, project, form, version, status=_error_status(error))
        runs = experiment.runs.count()
        messages.success(request, f"{experiment} is launched: {runs} run{'s' if runs != 1 else ''} queued.")
        return redirect("experiments:detail", pk=experiment.pk)

    def _project(self, request):
        project_id = _uuid_or_none(request.GET.get("project") or request.POST.get("project"))
        if project_id is None:
            raise Http404("Choose a project to launch an experiment in.")
        project = project_get(actor=request.user, pk=project_id)
        require(request.user, Action.EXPERIMENT_LAUNCH, project)
        return project

    @staticmethod
    def _version(versions, version_id):
        wanted = _uuid_or_none(version_id)
        return next((version for version in versions if version.pk == wanted), None)

    @staticmethod
    def _form(project, versions, version, **kwargs):
        columns = version_effective_columns(version=version) if version else []
        definition = getattr(project, "definition", None)
        return LaunchForm(versions=versions, columns=columns, definition=definition, **kwargs)

    def _render(self, request, project, form, version, status=200):
        context = {"project": project, "form": form, "version": version}
        return render(request, "experiments/experiment_launch.html", context, status=status)


class ExperimentDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        experiment = experiment_get(actor=request.user, pk=pk)
        ranked = list(leaderboard(experiment=experiment))
        context = {
            "experiment": experiment,
            "project": experiment.project,
            "runs": ranked,
            "spec": experiment.spec,
            "higher_is_better": experiment.spec.get("primary_metric") not in LOWER_IS_BETTER,
            "is_active": experiment.status in ACTIVE_EXPERIMENT_STATUSES,
            "can_cancel": experiment.status in ACTIVE_EXPERIMENT_STATUSES
            and can(request.user, Action.EXPERIMENT_CANCEL, experiment.project),
        }
        template = "experiments/partials/leaderboard.html" if request.htmx else "experiments/experiment_detail.html"
        return render(request, template, context)


class ExperimentCancelView(LoginRequiredMixin, View):
    def post(self, request, pk):
        experiment = experiment_get(actor=request.user, pk=pk)
        try:
            experiment_cancel(experiment=experiment, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "The experiment's unfinished runs are cancelled.")
        return redirect("experiments:detail", pk=experiment.pk)


def _run_context(request, run) -> dict:
    lines = list(run_log_lines(run=run, limit=LOG_TAIL))
    return {
        "run": run,
        "experiment": run.experiment,
        "project": run.experiment.project,
        "log_lines": lines,
        "can_cancel": run.is_active and can(request.user, Action.EXPERIMENT_CANCEL, run.experiment.project),
    }


class RunDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        run = run_get(actor=request.user, pk=pk)
        context = _run_context(request, run)
        if run.status == RunStatus.SUCCEEDED:
            context["summary_rows"] = run_summary_rows(run)
            context["charts"] = run_charts(run)
            context["can_register"] = can(request.user, Action.MODEL_REGISTER, run.experiment.project)
        return render(request, "experiments/run_detail.html", context)


class RunStatusView(LoginRequiredMixin, View):
    """The live part of the run page (progress, trials, best score, log tail). A page opened while the run was active
    asks with ?active=1; once the run has finished it is told to reload (HX-Refresh) to show the results."""

    def get(self, request, pk):
        run = run_get(actor=request.user, pk=pk)
        if request.GET.get("active") and not run.is_active:
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return render(request, "experiments/partials/run_status.html", _run_context(request, run))


class RunCancelView(LoginRequiredMixin, View):
    def post(self, request, pk):
        run = run_get(actor=request.user, pk=pk)
        try:
            run_cancel(run=run, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{run} is cancelled.")
        return redirect("experiments:run", pk=run.pk)


class RunCompareView(LoginRequiredMixin, View):
    """GET /experiments/runs/compare/?run=<uuid>&run=<uuid>... (checkboxes on the experiment page)."""

    def get(self, request):
        ids = [value for value in (_uuid_or_none(v) for v in request.GET.getlist("run")) if value]
        try:
            comparison = runs_compare(actor=request.user, run_ids=ids)
        except ApplicationError as error:
            messages.error(request, error.message)
            back = request.GET.get("experiment")
            return redirect("experiments:detail", pk=back) if _uuid_or_none(back) else redirect("experiments:list")
        return render(request, "experiments/run_compare.html", {"comparison": comparison})
