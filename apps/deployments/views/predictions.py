"""Prediction pages: one logged prediction (inputs, outputs, version, ground truth, explanations with an Explain
button), an explanation's live status, and the deployment page's live prediction log (a partial the deployment page
includes and refreshes with htmx while it is open).

Reads go through apps.deployments.selectors.predictions (what the reader may not see is a 404), writes through
apps.deployments.services.predictions; explanations are computed on workers, and their partial polls only while the
explanation is queued or running.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from apps.accounts.permissions import Action, can
from apps.core.exceptions import ApplicationError
from apps.deployments.choices import ExplanationStatus
from apps.deployments.models import GroundTruth
from apps.deployments.prediction_charts import contribution_chart
from apps.deployments.selectors.predictions import (
    deployment_for_predictions,
    explanation_get,
    latest_predictions,
    prediction_get,
)
from apps.deployments.services.predictions import explanation_request

ACTIVE_EXPLANATION = {ExplanationStatus.QUEUED, ExplanationStatus.RUNNING}


def _prediction_of(request, deployment_pk, pk):
    prediction = prediction_get(actor=request.user, pk=pk)
    if prediction.deployment_id != deployment_pk:
        raise Http404("No such prediction of this deployment.")
    return prediction


def explanation_context(explanation) -> dict:
    result = explanation.result or {}
    contributions = result.get("contributions") if isinstance(result.get("contributions"), dict) else {}
    return {
        "explanation": explanation,
        # Largest effect first (the stored JSON keeps no key order).
        "contributions": sorted(contributions.items(), key=lambda item: -abs(item[1] or 0)),
        "is_active": explanation.status in ACTIVE_EXPLANATION,
        "chart": contribution_chart(
            result.get("contributions"), base_value=result.get("base_value"), output=result.get("output", "")
        ),
    }


def _truth(prediction) -> GroundTruth | None:
    try:
        return prediction.truth
    except GroundTruth.DoesNotExist:
        return None


class PredictionDetailView(LoginRequiredMixin, View):
    def get(self, request, deployment_pk, pk):
        prediction = _prediction_of(request, deployment_pk, pk)
        project = prediction.deployment.project
        context = {
            "prediction": prediction,
            "deployment": prediction.deployment,
            "version": prediction.version,
            "truth": _truth(prediction),
            "explanations": [explanation_context(item) for item in prediction.explanations.all()],
            "can_explain": can(request.user, Action.PREDICTION_EXPLAIN, project),
        }
        return render(request, "deployments/prediction_detail.html", context)


class PredictionExplainView(LoginRequiredMixin, View):
    """Queue an explanation; htmx gets its status partial (which polls), a plain form post goes back to the page."""

    def post(self, request, deployment_pk, pk):
        prediction = _prediction_of(request, deployment_pk, pk)
        try:
            explanation = explanation_request(prediction=prediction, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("deployments:prediction_detail", deployment_pk=deployment_pk, pk=prediction.pk)
        if request.htmx:
            explanation = explanation_get(actor=request.user, pk=explanation.pk)
            return render(request, "deployments/_prediction_explanation.html", explanation_context(explanation))
        messages.success(request, "The explanation is queued; it appears here once a worker has computed it.")
        return redirect("deployments:prediction_detail", deployment_pk=deployment_pk, pk=prediction.pk)


class PredictionExplanationStatusView(LoginRequiredMixin, View):
    def get(self, request, deployment_pk, pk, explanation_pk):
        explanation = explanation_get(actor=request.user, pk=explanation_pk)
        prediction = explanation.prediction
        if prediction.pk != pk or prediction.deployment_id != deployment_pk:
            raise Http404("No such explanation of this prediction.")
        return render(request, "deployments/_prediction_explanation.html", explanation_context(explanation))


@login_required
def prediction_log_partial(request, pk):
    """The deployment page's prediction log: the latest predictions (refreshed by htmx every few seconds)."""
    deployment = deployment_for_predictions(actor=request.user, pk=pk)
    context = {"deployment": deployment, "predictions": latest_predictions(deployment=deployment)}
    return render(request, "deployments/_prediction_log.html", context)
