"""Registry pages: registered models and their versions, model cards, stage changes, promotion requests with their
gates, reviewers' decisions and rollback. Reads go through apps/registry/selectors.py (what the user may not see is a
404), every write through apps/registry/services.py, which holds the rules: separation of duties, gates, approvals
bound to the artifact's hash. These views only parse forms and show the results."""

import uuid

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.deployments.selectors.deployments import deployment_offer
from apps.experiments.selectors import run_get
from apps.monitoring.models import RetrainingRun
from apps.projects.selectors import project_get, project_visible_queryset
from apps.registry import cards, selectors, services
from apps.registry.choices import RequestStatus, Stage, VersionStatus
from apps.registry.forms import (
    ApproveForm,
    ModelCardForm,
    PromotionRequestForm,
    ReasonForm,
    RegisterForm,
    RejectForm,
    VersionEditForm,
)

INVALID = 400


def _error_status(error: ApplicationError) -> int:
    return error.status if 400 <= error.status < 600 else INVALID


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


# --- Models ---------------------------------------------------------------------------------------------------------
class ModelListView(LoginRequiredMixin, View):
    def get(self, request):
        project_id = _uuid_or_none(request.GET.get("project"))
        project = project_get(actor=request.user, pk=project_id) if project_id else None
        context = {
            "page_obj": paginate(request, selectors.registered_model_list(actor=request.user, project=project)),
            "projects": project_visible_queryset(actor=request.user).order_by("name"),
            "project": project,
        }
        return render(request, "registry/model_list.html", context)


class ModelDetailView(LoginRequiredMixin, View):
    def get(self, request, pk, rollback_form=None, status=200):
        model = selectors.registered_model_get(actor=request.user, pk=pk)
        project = model.project
        context = {
            "model": model,
            "project": project,
            "page_obj": paginate(request, selectors.model_version_list(registered_model=model)),
            "history": selectors.stage_history(registered_model=model)[:50],
            "requests": selectors.promotion_request_list(actor=request.user, registered_model=model)[:20],
            "can_rollback": can(request.user, Action.MODEL_ROLLBACK, project),
            "rollback_form": rollback_form or ReasonForm(prefix="rollback"),
        }
        return render(request, "registry/model_detail.html", context, status=status)


class ModelRollbackView(LoginRequiredMixin, View):
    def post(self, request, pk):
        model = selectors.registered_model_get(actor=request.user, pk=pk)
        form = ReasonForm(request.POST, prefix="rollback")
        form.is_valid()
        try:
            restored = services.model_rollback(
                registered_model=model, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return ModelDetailView().get(request, pk, rollback_form=form, status=_error_status(error))
        messages.success(request, f"Rolled back: {restored} serves production again.")
        return redirect("registry:model", pk=model.pk)


# --- Registering a run ----------------------------------------------------------------------------------------------
class RegisterRunView(LoginRequiredMixin, View):
    """GET /models/register/?run=<uuid>: the form on its own page; POST registers and lands on the new version."""

    def get(self, request):
        run = run_get(actor=request.user, pk=_uuid_or_none(request.GET.get("run")) or uuid.uuid4())
        project = run.experiment.project
        require(request.user, Action.MODEL_REGISTER, project)
        form = RegisterForm(initial={"run": run.pk}, models=self._models(request, project))
        return self._render(request, run, form)

    def post(self, request):
        run = run_get(actor=request.user, pk=_uuid_or_none(request.POST.get("run")) or uuid.uuid4())
        project = run.experiment.project
        form = RegisterForm(request.POST, models=self._models(request, project))
        if not form.is_valid():
            return self._render(request, run, form, status=INVALID)
        model_id = _uuid_or_none(form.cleaned_data["registered_model"])
        try:
            model = selectors.registered_model_get(actor=request.user, pk=model_id) if model_id else None
            version = services.model_version_register(
                run=run,
                actor=request.user,
                registered_model=model,
                model_name=form.cleaned_data["model_name"],
                description=form.cleaned_data["description"],
                tags=form.cleaned_tags(),
            )
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, run, form, status=_error_status(error))
        if version.status == VersionStatus.READY:
            messages.success(request, f"{version} is registered and ready.")
        else:
            messages.error(request, f"{version} could not be registered: {version.status_reason}")
        return redirect("registry:version", pk=version.pk)

    @staticmethod
    def _models(request, project):
        return list(selectors.registered_model_list(actor=request.user, project=project))

    def _render(self, request, run, form, status=200):
        context = {"run": run, "experiment": run.experiment, "project": run.experiment.project, "form": form}
        return render(request, "registry/register.html", context, status=status)


# --- Versions -------------------------------------------------------------------------------------------------------
def _version_context(request, version, **forms) -> dict:
    project = version.registered_model.project
    user = request.user
    may_register = can(user, Action.MODEL_REGISTER, project)
    open_request = next((r for r in version.promotion_requests.all() if r.status == RequestStatus.OPEN), None)
    return {
        "version": version,
        "model": version.registered_model,
        "project": project,
        "card": cards.card_sections(version),
        "open_request": open_request,
        "requests": list(version.promotion_requests.all()),
        "transitions": list(version.transitions.all()),
        "can_edit": may_register,
        "can_stage": may_register and version.status == VersionStatus.READY and version.stage == Stage.NONE,
        "can_archive": may_register and version.stage in (Stage.NONE, Stage.STAGING),
        "can_request": may_register
        and version.status == VersionStatus.READY
        and version.stage == Stage.STAGING
        and open_request is None,
        "edit_form": forms.get("edit_form")
        or VersionEditForm(initial={"description": version.description, "tags": ", ".join(version.tags or [])}),
        "stage_form": forms.get("stage_form") or ReasonForm(prefix="stage"),
        "request_form": forms.get("request_form") or PromotionRequestForm(prefix="request"),
        **deployment_offer(actor=user, version=version),
    }


class VersionDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        return render(request, "registry/version_detail.html", _version_context(request, version))


class VersionEditView(LoginRequiredMixin, View):
    def post(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        form = VersionEditForm(request.POST)
        form.is_valid()
        try:
            services.model_version_update(
                version=version,
                actor=request.user,
                description=form.cleaned_data.get("description", ""),
                tags=form.cleaned_tags(),
            )
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            context = _version_context(request, version, edit_form=form)
            return render(request, "registry/version_detail.html", context, status=_error_status(error))
        messages.success(request, "Saved.")
        return redirect("registry:version", pk=version.pk)


class VersionStageView(LoginRequiredMixin, View):
    """POST with stage=staging or stage=archived (and an optional reason)."""

    def post(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        form = ReasonForm(request.POST, prefix="stage")
        form.is_valid()
        target = request.POST.get("stage")
        change = {Stage.STAGING: services.version_move_to_staging, Stage.ARCHIVED: services.version_archive}.get(target)
        try:
            if change is None:
                raise ApplicationError("Choose staging or archived.", errors={"stage": ["Choose staging or archived."]})
            change(version=version, actor=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            context = _version_context(request, version, stage_form=form)
            return render(request, "registry/version_detail.html", context, status=_error_status(error))
        messages.success(request, f"{version} is now in {Stage(target).label.lower()}.")
        return redirect("registry:version", pk=version.pk)


class PromotionOpenView(LoginRequiredMixin, View):
    def post(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        form = PromotionRequestForm(request.POST, prefix="request")
        form.is_valid()
        try:
            promotion = services.promotion_request_open(
                version=version, actor=request.user, justification=form.cleaned_data.get("justification", "")
            )
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            context = _version_context(request, version, request_form=form)
            return render(request, "registry/version_detail.html", context, status=_error_status(error))
        messages.success(request, "The promotion request is open; the project's reviewers are notified.")
        return redirect("registry:promotion", pk=promotion.pk)


# --- Model cards ----------------------------------------------------------------------------------------------------
class ModelCardEditView(LoginRequiredMixin, View):
    def get(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        require(request.user, Action.MODEL_REGISTER, version.registered_model.project)
        return self._render(request, version, self._form(version))

    def post(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        form = self._form(version, data=request.POST)
        form.is_valid()
        try:
            services.model_card_update(version=version, actor=request.user, written=form.written())
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, version, form, status=_error_status(error))
        messages.success(request, "The model card is saved.")
        return redirect("registry:version", pk=version.pk)

    @staticmethod
    def _form(version, **kwargs):
        card = getattr(version, "card", None)
        return ModelCardForm(sections=cards.WRITTEN_SECTIONS, written=(card.written if card else {}), **kwargs)

    def _render(self, request, version, form, status=200):
        context = {"version": version, "model": version.registered_model, "form": form}
        return render(request, "registry/model_card_form.html", context, status=status)


class ModelCardDocumentView(LoginRequiredMixin, View):
    """The model card as one standalone HTML document (print it to PDF: it carries a print layout)."""

    def get(self, request, pk):
        version = selectors.model_version_get(actor=request.user, pk=pk)
        response = HttpResponse(cards.model_card_html(version), content_type="text/html; charset=utf-8")
        if request.GET.get("download"):
            name = f"model-card-{version.registered_model.name}-v{version.number}.html".replace(" ", "-")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


# --- Promotion requests ---------------------------------------------------------------------------------------------
class PromotionListView(LoginRequiredMixin, View):
    def get(self, request):
        status = request.GET.get("status") or RequestStatus.OPEN
        if status not in RequestStatus.values and status != "all":
            status = RequestStatus.OPEN
        requests = selectors.promotion_request_list(actor=request.user, status=None if status == "all" else status)
        context = {"page_obj": paginate(request, requests), "status": status, "statuses": RequestStatus.choices}
        return render(request, "registry/promotion_list.html", context)


def _promotion_context(request, promotion, **forms) -> dict:
    may_decide, why_not = selectors.reviewer_can_decide(request=promotion, actor=request.user)
    return {
        "promotion": promotion,
        "version": promotion.version,
        "model": promotion.version.registered_model,
        "project": promotion.version.registered_model.project,
        "approvals": list(promotion.approvals.all()),
        "gates": promotion.gates,
        "gates_pass": all(gate.get("passed") for gate in promotion.gates),
        "can_decide": may_decide,
        "why_not": why_not,
        "is_admin": request.user.is_superuser or getattr(request.user, "role", "") == "admin",
        "can_withdraw": promotion.status == RequestStatus.OPEN and promotion.requester_id == request.user.pk,
        "approve_form": forms.get("approve_form") or ApproveForm(prefix="approve"),
        "reject_form": forms.get("reject_form") or RejectForm(prefix="reject"),
        "retraining": RetrainingRun.objects.filter(promotion_request=promotion).first(),
    }


class PromotionDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        promotion = selectors.promotion_request_get(actor=request.user, pk=pk)
        return render(request, "registry/promotion_detail.html", _promotion_context(request, promotion))


class PromotionDecisionView(LoginRequiredMixin, View):
    """POST .../approve/ or .../reject/ (the `decision` URL argument)."""

    def post(self, request, pk, decision):
        promotion = selectors.promotion_request_get(actor=request.user, pk=pk)
        if decision == "approve":
            form = ApproveForm(request.POST, prefix="approve")
            form.is_valid()
            decide = lambda: services.promotion_approve(  # noqa: E731 - one call, two shapes
                request=promotion,
                actor=request.user,
                comment=form.cleaned_data.get("comment", ""),
                gate_override_reason=form.cleaned_data.get("gate_override_reason", ""),
            )
            forms_key = "approve_form"
        else:
            form = RejectForm(request.POST, prefix="reject")
            form.is_valid()
            decide = lambda: services.promotion_reject(  # noqa: E731
                request=promotion, actor=request.user, reason=form.cleaned_data.get("reason", "")
            )
            forms_key = "reject_form"
        try:
            decided = decide()
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            promotion = selectors.promotion_request_get(actor=request.user, pk=pk)  # a void request shows as void
            context = _promotion_context(request, promotion, **{forms_key: form})
            return render(request, "registry/promotion_detail.html", context, status=_error_status(error))
        messages.success(request, _decision_message(decided))
        return redirect("registry:promotion", pk=promotion.pk)


def _decision_message(promotion) -> str:
    if promotion.status == RequestStatus.APPROVED:
        return f"Approved: {promotion.version} is in production."
    if promotion.status == RequestStatus.REJECTED:
        return "Rejected; the requester is told why."
    return "Your approval is recorded; the request waits for more approvals."


class PromotionWithdrawView(LoginRequiredMixin, View):
    def post(self, request, pk):
        promotion = selectors.promotion_request_get(actor=request.user, pk=pk)
        try:
            services.promotion_withdraw(request=promotion, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "The request is withdrawn.")
        return redirect("registry:promotion", pk=promotion.pk)
