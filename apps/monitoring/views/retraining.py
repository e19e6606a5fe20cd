"""Retraining pages: a registered model's policy (form) with its retraining runs, and one run with the comparison of
its new version and the production version. Reads go through apps/monitoring/selectors.py and the registry
selectors (a model the user may not see is a 404); writes through apps/monitoring/services/retraining.py."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect, render
from django.views import View

from apps.accounts.permissions import Action, can
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.monitoring.forms import RetrainingPolicyForm
from apps.monitoring.selectors import retraining_policy_of, retraining_run_get, retraining_run_list
from apps.monitoring.services.retraining import retraining_policy_set, retraining_start_by_hand
from apps.registry.selectors import registered_model_get

INVALID = 400


def _error_status(error: ApplicationError) -> int:
    return error.status if 400 <= error.status < 600 else INVALID


def _initial(policy) -> dict:
    if policy is None:
        return {"on_drift_alert": True, "on_performance_alert": True, "schedule_days": None, "enabled": True}
    return {
        "on_drift_alert": policy.on_drift_alert,
        "on_performance_alert": policy.on_performance_alert,
        "schedule_days": policy.schedule_days,
        "enabled": policy.enabled,
    }


class RetrainingPolicyView(LoginRequiredMixin, View):
    """GET the model's policy and its retrainings; POST saves the policy (the user becomes its owner)."""

    def get(self, request, model_pk, form=None, start_error="", status=200):
        model = registered_model_get(actor=request.user, pk=model_pk)
        policy = retraining_policy_of(registered_model=model)
        context = {
            "model": model,
            "project": model.project,
            "policy": policy,
            "form": form or RetrainingPolicyForm(initial=_initial(policy)),
            "can_manage": can(request.user, Action.RETRAINING_MANAGE, model.project),
            "start_error": start_error,
            "page_obj": paginate(request, retraining_run_list(actor=request.user, registered_model=model)),
        }
        return render(request, "monitoring/retraining_policy.html", context, status=status)

    def post(self, request, model_pk):
        model = registered_model_get(actor=request.user, pk=model_pk)
        form = RetrainingPolicyForm(request.POST)
        if not form.is_valid():
            return self.get(request, model_pk, form=form, status=INVALID)
        try:
            retraining_policy_set(registered_model=model, actor=request.user, **form.policy_values())
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self.get(request, model_pk, form=form, status=_error_status(error))
        messages.success(request, "The retraining policy is saved; you are its owner.")
        return redirect("monitoring:retraining_policy", model_pk=model.pk)


class RetrainingStartView(LoginRequiredMixin, View):
    def post(self, request, model_pk):
        model = registered_model_get(actor=request.user, pk=model_pk)
        try:
            run = retraining_start_by_hand(registered_model=model, actor=request.user)
        except ApplicationError as error:
            return RetrainingPolicyView().get(request, model_pk, start_error=error.message, status=_error_status(error))
        messages.success(request, "The retraining is training.")
        return redirect("monitoring:retraining_run", pk=run.pk)


class RetrainingRunDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        run = retraining_run_get(actor=request.user, pk=pk)
        comparison = run.comparison or {}
        rows = [
            {"metric": name, **values, "primary": name == comparison.get("primary_metric")}
            for name, values in (comparison.get("metrics") or {}).items()
        ]
        context = {
            "run": run,
            "model": run.policy.registered_model,
            "project": run.policy.registered_model.project,
            "comparison": comparison,
            "comparison_rows": rows,
        }
        return render(request, "monitoring/retraining_run.html", context)
