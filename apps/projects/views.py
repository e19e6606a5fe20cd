"""Project pages. Reads go through the selectors (a project you may not see is a 404), writes through the services;
permission decisions come from apps.accounts.permissions."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views import View

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.experiments.selectors import experiment_list
from apps.monitoring.selectors import project_realised_value
from apps.monitoring.services.monitors import expected_value_per_decision
from apps.projects.choices import METRICS_BY_PROBLEM_TYPE, ProjectStatus
from apps.projects.forms import (
    ProblemDefinitionForm,
    ProjectFilterForm,
    ProjectMemberForm,
    ReasonForm,
    secondary_metrics_as_text,
)
from apps.projects.lifecycle import EVENT_LABELS, TRANSITIONS
from apps.projects.roi import expected_roi
from apps.projects.selectors import (
    project_get,
    project_history,
    project_list,
    project_members,
    project_transitions_available,
)
from apps.projects.services import (
    project_approve,
    project_create,
    project_mark_in_production,
    project_member_remove,
    project_member_set,
    project_retire,
    project_return_to_draft,
    project_submit,
    project_update_definition,
)
from apps.projects.validation import DEFINITION_FIELDS, definition_errors
from apps.registry.selectors import production_versions

INVALID = 400
RECENT_EXPERIMENTS = 5


def _audit_trail_url(request, project) -> str | None:
    if not can(request.user, Action.AUDIT_VIEW, project):
        return None
    try:
        return f"{reverse('audit:list')}?project={project.pk}"
    except NoReverseMatch:
        return None


def _detail_context(request, project, **forms) -> dict:
    definition = project.definition
    history = [
        {"event": event, "label": EVENT_LABELS.get(event.action, event.action)}
        for event in project_history(project=project)
    ]
    return {
        "project": project,
        "definition": definition,
        "roi": expected_roi(definition),
        "history": history,
        "transitions": project_transitions_available(actor=request.user, project=project),
        "members": project_members(project=project),
        "can_edit": can(request.user, Action.PROJECT_EDIT, project) and project.status == ProjectStatus.DRAFT,
        "can_manage_members": can(request.user, Action.MEMBERSHIP_MANAGE, project),
        "audit_trail_url": _audit_trail_url(request, project),
        "return_form": forms.get("return_form") or ReasonForm(prefix="return"),
        "retire_form": forms.get("retire_form") or ReasonForm(prefix="retire"),
        "member_form": forms.get("member_form") or ProjectMemberForm(prefix="member"),
        "recent_experiments": list(experiment_list(actor=request.user, project=project)[:RECENT_EXPERIMENTS]),
        "production_versions": production_versions(project=project),
        "expected_per_decision": expected_value_per_decision(definition),
        "realised_values": project_realised_value(project=project)
        if can(request.user, Action.MONITOR_VIEW, project)
        else [],
    }


def _form_context(form, *, title: str, project) -> dict:
    return {
        "form": form,
        "fieldsets": form.fieldsets(),
        "title": title,
        "project": project,
        "metrics_by_type": {str(kind): [str(m) for m in metrics] for kind, metrics in METRICS_BY_PROBLEM_TYPE.items()},
    }


class ProjectListView(LoginRequiredMixin, View):
    def get(self, request):
        filter_form = ProjectFilterForm(request.GET)
        filter_form.is_valid()
        page_obj = paginate(request, project_list(actor=request.user, filters=filter_form.cleaned_data))
        context = {
            "filter_form": filter_form,
            "page_obj": page_obj,
            "can_create": can(request.user, Action.PROJECT_CREATE),
        }
        template = "projects/partials/project_table.html" if request.htmx else "projects/project_list.html"
        return render(request, template, context)


class ProjectCreateView(LoginRequiredMixin, View):
    def get(self, request):
        require(request.user, Action.PROJECT_CREATE)
        return self._render(request, ProblemDefinitionForm())

    def post(self, request):
        require(request.user, Action.PROJECT_CREATE)
        form = ProblemDefinitionForm(request.POST)
        if not form.is_valid():
            form.apply_errors(definition_errors(form.cleaned_data))
            return self._render(request, form, status=INVALID)
        try:
            project = project_create(actor=request.user, data=form.cleaned_data)
        except ApplicationError as error:
            form.apply_errors(error.errors or {None: [error.message]})
            return self._render(request, form, status=error.status)
        messages.success(request, "The problem definition is filed as a draft. Submit it for review when ready.")
        return redirect("projects:detail", pk=project.pk)

    def _render(self, request, form, status=200):
        context = _form_context(form, title="New problem definition", project=None)
        return render(request, "projects/project_form.html", context, status=status)


class ProjectDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        project = project_get(actor=request.user, pk=pk)
        return render(request, "projects/project_detail.html", _detail_context(request, project))


class ProjectEditView(LoginRequiredMixin, View):
    def get(self, request, pk):
        project = project_get(actor=request.user, pk=pk)
        require(request.user, Action.PROJECT_EDIT, project)
        if project.status != ProjectStatus.DRAFT:
            messages.error(request, "Only a draft project can be edited.")
            return redirect("projects:detail", pk=project.pk)
        definition = project.definition
        initial = {"title": project.name, **{name: getattr(definition, name) for name in DEFINITION_FIELDS}}
        initial["secondary_metrics"] = secondary_metrics_as_text(definition.secondary_metrics)
        return self._render(request, project, ProblemDefinitionForm(initial=initial))

    def post(self, request, pk):
        project = project_get(actor=request.user, pk=pk)
        require(request.user, Action.PROJECT_EDIT, project)
        form = ProblemDefinitionForm(request.POST)
        if not form.is_valid():
            form.apply_errors(definition_errors(form.cleaned_data))
            return self._render(request, project, form, status=INVALID)
        try:
            project_update_definition(project=project, actor=request.user, data=form.cleaned_data)
        except ApplicationError as error:
            if not error.errors:
                messages.error(request, error.message)
                return redirect("projects:detail", pk=project.pk)
            form.apply_errors(error.errors)
            return self._render(request, project, form, status=INVALID)
        messages.success(request, "The problem definition is saved.")
        return redirect("projects:detail", pk=project.pk)

    def _render(self, request, project, form, status=200):
        context = _form_context(form, title=f"Edit “{project.name}”", project=project)
        return render(request, "projects/project_form.html", context, status=status)


_TRANSITION_SERVICES = {
    "submit": project_submit,
    "approve": project_approve,
    "return": project_return_to_draft,
    "mark_in_production": project_mark_in_production,
    "retire": project_retire,
}
_DONE_MESSAGES = {
    "submit": "Submitted for review.",
    "approve": "Approved for development.",
    "return": "Returned to draft.",
    "mark_in_production": "Marked as in production.",
    "retire": "Retired.",
}


class ProjectTransitionView(LoginRequiredMixin, View):
    """POST <uuid>/<transition>/: one lifecycle step."""

    transition: str = ""

    def post(self, request, pk):
        project = project_get(actor=request.user, pk=pk)
        transition = TRANSITIONS[self.transition]
        service = _TRANSITION_SERVICES[self.transition]
        kwargs = {}
        form = None
        if transition.reason != "none":
            form = ReasonForm(request.POST, prefix=self.transition)
            form.is_valid()
            kwargs["reason"] = form.cleaned_data.get("reason", "")
        try:
            service(project=project, actor=request.user, **kwargs)
        except ApplicationError as error:
            if form is not None and error.errors:
                form.apply_errors(error.errors)
                context = _detail_context(request, project, **{f"{self.transition}_form": form})
                return render(request, "projects/project_detail.html", context, status=INVALID)
            messages.error(request, error.message)
            return redirect("projects:detail", pk=project.pk)
        messages.success(request, _DONE_MESSAGES[self.transition])
        return redirect("projects:detail", pk=project.pk)


class ProjectMemberSetView(LoginRequiredMixin, View):
    def post(self, request, pk):
        project = project_get(actor=request.user, pk=pk)
        require(request.user, Action.MEMBERSHIP_MANAGE, project)
        form = ProjectMemberForm(request.POST, prefix="member")
        if form.is_valid():
            try:
                membership = project_member_set(project=project, actor=request.user, **form.cleaned_data)
            except ApplicationError as error:
                form.apply_errors(error.errors or {None: [error.message]})
            else:
                messages.success(
                    request, f"{membership.user.username} is now {membership.get_role_display().lower()} here."
                )
                return redirect("projects:detail", pk=project.pk)
        context = _detail_context(request, project, member_form=form)
        return render(request, "projects/project_detail.html", context, status=INVALID)


class ProjectMemberRemoveView(LoginRequiredMixin, View):
    def post(self, request, pk, membership_pk):
        project = project_get(actor=request.user, pk=pk)
        try:
            project_member_remove(project=project, actor=request.user, membership_id=membership_pk)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "The member is removed.")
        return redirect("projects:detail", pk=project.pk)
