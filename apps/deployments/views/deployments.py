"""Deployment pages: the list, one-click deploy from a version, the deployment page (status, URL, replicas, traffic
split, live figures, traffic history, the prediction log) and one POST view per use case. Views parse and render;
apps/deployments/services decide."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.deployments import forms
from apps.deployments.choices import RouteRole
from apps.deployments.selectors import deployments as selectors
from apps.deployments.selectors.predictions import latest_predictions
from apps.deployments.services import deployments as services
from apps.features.models import FeatureView
from apps.projects.selectors import project_get, project_visible_queryset
from apps.registry.models import ModelVersion
from apps.registry.selectors import model_version_get

INVALID = 400


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _error_status(error: ApplicationError) -> int:
    return error.status if 400 <= error.status < 600 else INVALID


class DeploymentListView(LoginRequiredMixin, View):
    def get(self, request):
        project_id = _uuid_or_none(request.GET.get("project"))
        project = project_get(actor=request.user, pk=project_id) if project_id else None
        context = {
            "page_obj": paginate(request, selectors.deployment_list(actor=request.user, project=project)),
            "projects": project_visible_queryset(actor=request.user).order_by("name"),
            "project": project,
        }
        return render(request, "deployments/deployment_list.html", context)


class DeploymentCreateView(LoginRequiredMixin, View):
    """GET /deployments/new/?version=<uuid>: the deploy form on its own page; POST deploys and lands on the page."""

    def get(self, request):
        version = model_version_get(actor=request.user, pk=_uuid_or_none(request.GET.get("version")) or uuid.uuid4())
        return self._render(request, version, forms.DeployForm(initial={"version": version.pk}))

    def post(self, request):
        version = model_version_get(actor=request.user, pk=_uuid_or_none(request.POST.get("version")) or uuid.uuid4())
        form = forms.DeployForm(request.POST)
        if not form.is_valid():
            return self._render(request, version, form, status=INVALID)
        try:
            deployment = services.deployment_create(
                version=version,
                actor=request.user,
                name=form.cleaned_data["name"],
                environment=form.cleaned_data["environment"],
                replicas=form.cleaned_data["replicas"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, version, form, status=_error_status(error))
        messages.success(request, f"Deploying {version} to {deployment.name}: it answers as soon as it is ready.")
        return redirect("deployments:detail", pk=deployment.pk)

    def _render(self, request, version, form, status=200):
        context = {"version": version, "model": version.registered_model, "project": version.registered_model.project}
        return render(request, "deployments/deployment_create.html", {**context, "form": form}, status=status)


# --- The deployment page --------------------------------------------------------------------------------------------
def _forms_for(deployment, data=None, *, only: str = "") -> dict[str, Any]:
    """Every action form of the page, unbound (or the one named `only` bound to `data`)."""
    model = deployment.registered_model
    deployable = list(selectors.deployable_versions(registered_model=model, environment=deployment.environment))
    in_use = [route.version for route in deployment.routes.all()]
    builders = {
        "rollout": lambda d: forms.RolloutForm(d, prefix="rollout", versions=deployable),
        "ab": lambda d: forms.ABForm(d, prefix="ab", versions=deployable),
        "shadow": lambda d: forms.ShadowForm(
            d, prefix="shadow", versions=selectors.shadow_candidates(registered_model=model)
        ),
        "end_experiment": lambda d: forms.KeepForm(d, prefix="end", versions=in_use),
        "scale": lambda d: forms.ScaleForm(d, prefix="scale", initial={"replicas": deployment.replicas}),
        "stop": lambda d: forms.ReasonForm(d, prefix="stop"),
        "feature_view": lambda d: forms.FeatureViewForm(
            d,
            prefix="features",
            views=FeatureView.objects.order_by("name"),
            initial={"view": deployment.feature_view.name if deployment.feature_view_id else ""},
        ),
        "switch_back": lambda d: forms.ReasonForm(d, prefix="switch_back"),
        "rollback": lambda d: forms.ReasonForm(d, prefix="rollback"),
        "canary_configure": lambda d: forms.CanaryForm(
            d,
            prefix="canary",
            initial={
                "step_percent": deployment.canary_step_percent,
                "step_seconds": deployment.canary_step_seconds,
                "max_error_rate": deployment.canary_max_error_rate,
                "max_p99_ms": deployment.canary_max_p99_ms,
                "min_requests": deployment.canary_min_requests,
            },
        ),
    }
    return {name: build(data if name == only else None) for name, build in builders.items()}


def _page_context(request, deployment, **bound_forms) -> dict[str, Any]:
    routes = list(deployment.routes.all())
    may_manage = selectors.can_manage(actor=request.user, deployment=deployment)
    can_view_predictions = can(request.user, Action.PREDICTION_VIEW, deployment.project)
    action_forms = _forms_for(deployment) if may_manage else {}
    action_forms.update(bound_forms)
    return {
        "deployment": deployment,
        "project": deployment.project,
        "model": deployment.registered_model,
        "live_routes": [route for route in routes if route.role == RouteRole.LIVE],
        "shadow_routes": [route for route in routes if route.role == RouteRole.SHADOW],
        "figures": selectors.live_figures(deployment=deployment),
        "shadow_comparisons": selectors.shadow_comparison(deployment=deployment) if can_view_predictions else [],
        "history": selectors.traffic_history(deployment=deployment)[:30],
        "can_manage": may_manage,
        "actions": selectors.strategy_actions(deployment=deployment) if may_manage else [],
        "forms": action_forms,
        "can_view_predictions": can_view_predictions,
        "predictions": latest_predictions(deployment=deployment) if can_view_predictions else [],
    }


class DeploymentDetailView(LoginRequiredMixin, View):
    def get(self, request, pk, status=200, **bound_forms):
        deployment = selectors.deployment_get(actor=request.user, pk=pk)
        return render(
            request,
            "deployments/deployment_detail.html",
            _page_context(request, deployment, **bound_forms),
            status=status,
        )


class DeploymentLiveView(LoginRequiredMixin, View):
    """The status panel alone, polled by htmx while the page is open."""

    def get(self, request, pk):
        deployment = selectors.deployment_get(actor=request.user, pk=pk)
        return render(request, "deployments/_live.html", _page_context(request, deployment))


# --- Use cases ------------------------------------------------------------------------------------------------------
def _version(deployment, version_id) -> ModelVersion:
    version = deployment.registered_model.versions.filter(pk=_uuid_or_none(version_id)).first()
    if version is None:
        raise ApplicationError("Choose a version of this model.", errors={"version": ["Choose a version."]})
    return version


@dataclass(frozen=True)
class PageAction:
    form: str  # the key in _forms_for, or "" for an action without fields
    run: Any  # (deployment, actor, cleaned data) -> the service's result
    message: str  # shown when it succeeded


ACTIONS: dict[str, PageAction] = {
    "rollout": PageAction(
        "rollout",
        lambda d, actor, data: services.deployment_rollout(
            deployment=d,
            version=_version(d, data["version"]),
            actor=actor,
            strategy=data["strategy"],
            reason=data["reason"],
        ),
        "Rollout started.",
    ),
    "ab": PageAction(
        "ab",
        lambda d, actor, data: services.ab_test_start(
            deployment=d,
            version=_version(d, data["version"]),
            actor=actor,
            share_percent=data["share_percent"],
            sticky_key=data["sticky_key"],
            reason=data["reason"],
        ),
        "A/B test started.",
    ),
    "shadow": PageAction(
        "shadow",
        lambda d, actor, data: services.shadow_start(
            deployment=d, version=_version(d, data["version"]), actor=actor, reason=data["reason"]
        ),
        "Shadow started: the candidate gets a copy of live traffic.",
    ),
    "end_experiment": PageAction(
        "end_experiment",
        lambda d, actor, data: services.experiment_end(
            deployment=d, actor=actor, keep=_version(d, data["keep"]), reason=data["reason"]
        ),
        "Ended: one version serves all traffic.",
    ),
    "switch": PageAction(
        "",
        lambda d, actor, data: services.blue_green_switch(
            deployment=d, actor=actor, ready_versions=set(d.observed.get("ready_versions", []))
        ),
        "Switched.",
    ),
    "switch_back": PageAction(
        "switch_back",
        lambda d, actor, data: services.blue_green_switch_back(deployment=d, actor=actor, reason=data["reason"]),
        "Switched back to the previous version.",
    ),
    "rollback": PageAction(
        "rollback",
        lambda d, actor, data: services.rollout_rollback(deployment=d, actor=actor, reason=data["reason"]),
        "Rolled back.",
    ),
    "advance": PageAction(
        "", lambda d, actor, data: services.canary_advance(deployment=d, actor=actor), "Canary share raised."
    ),
    "finish": PageAction(
        "", lambda d, actor, data: services.rollout_finish(deployment=d, actor=actor), "Previous version unloaded."
    ),
    "scale": PageAction(
        "scale",
        lambda d, actor, data: services.deployment_scale(deployment=d, actor=actor, replicas=data["replicas"]),
        "Scaling.",
    ),
    "stop": PageAction(
        "stop",
        lambda d, actor, data: services.deployment_stop(deployment=d, actor=actor, reason=data["reason"]),
        "Stopping.",
    ),
    "feature_view": PageAction(
        "feature_view",
        lambda d, actor, data: services.deployment_feature_view_set(
            deployment=d,
            actor=actor,
            view=FeatureView.objects.filter(name=data["view"]).first() if data["view"] else None,
        ),
        "Feature lookup saved: the servers reload it.",
    ),
    "start": PageAction("", lambda d, actor, data: services.deployment_start(deployment=d, actor=actor), "Starting."),
    "canary_configure": PageAction(
        "canary_configure",
        lambda d, actor, data: services.canary_configure(
            deployment=d,
            actor=actor,
            step_percent=data["step_percent"],
            step_seconds=data["step_seconds"],
            max_error_rate=data["max_error_rate"],
            max_p99_ms=data["max_p99_ms"],
            min_requests=data["min_requests"],
        ),
        "Canary policy saved.",
    ),
}


class DeploymentActionView(LoginRequiredMixin, View):
    def post(self, request, pk, action: str):
        deployment = selectors.deployment_get(actor=request.user, pk=pk)
        spec = ACTIONS.get(action)
        if spec is None:
            raise Http404("No such action.")
        form = _forms_for(deployment, request.POST, only=spec.form)[spec.form] if spec.form else None
        if form is not None and not form.is_valid():
            return DeploymentDetailView().get(request, pk, status=INVALID, **{spec.form: form})
        try:
            spec.run(deployment, request.user, form.cleaned_data if form is not None else {})
        except ApplicationError as error:
            if form is None:
                messages.error(request, error.message)
                return redirect("deployments:detail", pk=deployment.pk)
            form.apply_errors(error.errors, message=error.message)
            return DeploymentDetailView().get(request, pk, status=_error_status(error), **{spec.form: form})
        messages.success(request, spec.message)
        return redirect("deployments:detail", pk=deployment.pk)


class DeploymentManifestsView(LoginRequiredMixin, View):
    """GET /deployments/<uuid>/manifests.yaml: the Kubernetes objects of this deployment, to apply with kubectl."""

    def get(self, request, pk):
        deployment = selectors.deployment_get(actor=request.user, pk=pk)
        require(request.user, Action.DEPLOYMENT_MANAGE, deployment.project)
        response = HttpResponse(selectors.kubernetes_manifests(deployment=deployment), content_type="application/yaml")
        response["Content-Disposition"] = f'attachment; filename="{deployment.name}-kubernetes.yaml"'
        return response
