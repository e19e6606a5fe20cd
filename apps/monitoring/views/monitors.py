"""Monitoring pages: the portal-wide overview, a deployment's dashboard (time series of drift, performance, latency,
errors and realised value; the latest check's per-feature drift; alert history), a check with its Evidently report,
the alert inbox and one alert. Views parse and render; apps/monitoring/services decide."""

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.accounts.permissions import Action, can
from apps.core.artifacts import artifact_store
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.experiments import charts
from apps.monitoring import selectors
from apps.monitoring.choices import AlertStatus, Figure
from apps.monitoring.forms import MonitorForm, NoteForm, RuleForm
from apps.monitoring.services import checks as check_services
from apps.monitoring.services import monitors as monitor_services

INVALID = 400
# The evidently report is Evidently's own page: it runs its scripts in a sandboxed frame of its own, with no access to
# the portal's cookies or pages, and may load nothing from the network.
REPORT_CSP = "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; " + (
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)


def _error_status(error: ApplicationError) -> int:
    return error.status if 400 <= error.status < 600 else INVALID


class OverviewView(LoginRequiredMixin, View):
    def get(self, request):
        return render(request, "monitoring/overview.html", {"rows": selectors.overview(actor=request.user)})


# --- The dashboard --------------------------------------------------------------------------------------------------
def _hours_since(start: datetime, moment: datetime) -> float:
    return (moment - start).total_seconds() / 3600


def _series(checks, key: str, name: str, start) -> dict:
    points = [(c, c.figures.get(key)) for c in checks if c.figures.get(key) is not None]
    return {"name": name, "x": [_hours_since(start, c.created_at) for c, _ in points], "y": [v for _, v in points]}


def dashboard_charts(checks: list) -> dict:
    """One line chart per monitored figure over the checks (x: hours since the first check shown)."""
    if not checks:
        return {}
    start = checks[0].created_at
    metrics = sorted({key for check in checks for key in check.figures if key.startswith("metric:")})
    line = charts.line_chart
    return {
        "drift": line(
            [_series(checks, Figure.DRIFT_SHARE, "drifted share", start)],
            title="Share of drifted inputs",
            x_label="hours",
            y_label="share",
            y_range=(0, 1),
            markers=True,
        ),
        "performance": line(
            [_series(checks, key, key.removeprefix("metric:"), start) for key in metrics],
            title="Performance on live outcomes",
            x_label="hours",
            y_label="metric",
            markers=True,
        ),
        "latency": line(
            [_series(checks, Figure.LATENCY_P99, "p99 ms", start)],
            title="p99 latency",
            x_label="hours",
            y_label="ms",
            markers=True,
        ),
        "errors": line(
            [_series(checks, Figure.ERROR_RATE, "error rate", start)],
            title="Error rate",
            x_label="hours",
            y_label="share",
            markers=True,
        ),
        "value": line(
            [_series(checks, Figure.REALISED_VALUE, "per decision", start)],
            title="Realised value per decision",
            x_label="hours",
            y_label="value",
            markers=True,
        ),
    }


def column_charts(check) -> list[dict]:
    """Per drifted-or-not column of a check: reference vs current distribution as bars."""
    rows = []
    for column in (check.drift or {}).get("columns", []) if check else []:
        reference, current = column.get("reference") or {}, column.get("current") or {}
        rows.append({"column": column, "chart": _distribution_chart(column.get("column", ""), reference, current)})
    return rows


def _distribution_chart(name: str, reference: dict, current: dict):
    if reference.get("type") == "histogram" and reference.get("counts") and current.get("counts"):
        edges = reference.get("edges") or []
        centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)] or list(
            range(len(reference["counts"]))
        )
        return charts.line_chart(
            [
                {"name": "reference", "x": centres, "y": _shares(reference["counts"])},
                {"name": "current", "x": centres, "y": _shares(current["counts"])},
            ],
            title=f"{name}: reference vs current",
            x_label=name,
            y_label="share",
        )
    shares = current.get("shares") or {}
    return charts.bar_chart(list(shares.items())[:10], title=f"{name}: current shares", value_format="{:.2f}")


def _shares(counts: list) -> list[float]:
    total = sum(counts) or 1
    return [count / total for count in counts]


def _dashboard_context(request, monitor, **forms) -> dict:
    deployment = monitor.deployment
    checks = selectors.check_series(monitor=monitor)
    latest = checks[-1] if checks else None
    versions = deployment.registered_model.versions.order_by("-number")
    may_configure = can(request.user, Action.MONITOR_CONFIGURE, deployment.project)
    return {
        "monitor": monitor,
        "deployment": deployment,
        "project": deployment.project,
        "checks": list(reversed(checks))[:20],
        "latest": latest,
        "charts": dashboard_charts(checks),
        "columns": column_charts(latest),
        "alerts": selectors.alert_list(actor=request.user, monitor=monitor)[:30],
        "pending": monitor.checks.filter(status__in=["queued", "running"]).first(),
        "can_configure": may_configure,
        "monitor_form": forms.get("monitor_form") or _monitor_form(monitor, versions),
        "rule_form": forms.get("rule_form") or RuleForm(prefix="rule"),
    }


def _monitor_form(monitor, versions, data=None) -> MonitorForm:
    initial = {
        "reference_version": str(monitor.reference_version_id or ""),
        "window_kind": monitor.window_kind,
        "window_hours": monitor.window_hours,
        "window_predictions": monitor.window_predictions,
        "performance_days": monitor.performance_days,
        "schedule_minutes": monitor.schedule_minutes,
        "drift_column_threshold": monitor.drift_column_threshold,
        "max_rows": monitor.max_rows,
        "enabled": monitor.enabled,
    }
    return MonitorForm(data, prefix="monitor", initial=initial, versions=versions)


class DashboardView(LoginRequiredMixin, View):
    def get(self, request, deployment_pk, status=200, **forms):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=deployment_pk)
        return render(
            request, "monitoring/dashboard.html", _dashboard_context(request, monitor, **forms), status=status
        )


class MonitorEditView(LoginRequiredMixin, View):
    def post(self, request, deployment_pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=deployment_pk)
        versions = monitor.deployment.registered_model.versions.order_by("-number")
        form = _monitor_form(monitor, versions, request.POST)
        if not form.is_valid():
            return DashboardView().get(request, deployment_pk, status=INVALID, monitor_form=form)
        data = dict(form.cleaned_data)
        reference = data.pop("reference_version")
        data["reference_version"] = versions.filter(pk=reference).first() if reference else None
        try:
            monitor_services.monitor_update(monitor=monitor, actor=request.user, data=data)
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return DashboardView().get(request, deployment_pk, status=_error_status(error), monitor_form=form)
        messages.success(request, "Monitor saved.")
        return redirect("monitoring:dashboard", deployment_pk=deployment_pk)


class RuleCreateView(LoginRequiredMixin, View):
    def post(self, request, deployment_pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=deployment_pk)
        form = RuleForm(request.POST, prefix="rule")
        if not form.is_valid():
            return DashboardView().get(request, deployment_pk, status=INVALID, rule_form=form)
        try:
            monitor_services.alert_rule_create(monitor=monitor, actor=request.user, data=form.cleaned_data)
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return DashboardView().get(request, deployment_pk, status=_error_status(error), rule_form=form)
        messages.success(request, "Alert rule added.")
        return redirect("monitoring:dashboard", deployment_pk=deployment_pk)


class RuleToggleView(LoginRequiredMixin, View):
    def post(self, request, deployment_pk, rule_pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=deployment_pk)
        rule = monitor.rules.filter(pk=rule_pk).first()
        if rule is None:
            raise Http404("No such rule.")
        monitor_services.alert_rule_update(rule=rule, actor=request.user, data={"enabled": not rule.enabled})
        return redirect("monitoring:dashboard", deployment_pk=deployment_pk)


class CheckNowView(LoginRequiredMixin, View):
    def post(self, request, deployment_pk):
        monitor = selectors.monitor_of_deployment(actor=request.user, deployment_pk=deployment_pk)
        try:
            monitor_services.check_request(monitor=monitor, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Check queued: the page shows it when it finishes.")
        return redirect("monitoring:dashboard", deployment_pk=deployment_pk)


class CheckDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        check = selectors.check_get(actor=request.user, pk=pk)
        context = {"check": check, "deployment": check.monitor.deployment, "columns": column_charts(check)}
        return render(request, "monitoring/check_detail.html", context)


class CheckReportView(LoginRequiredMixin, View):
    """Evidently's HTML report of a check, as Evidently wrote it (self-contained), sandboxed."""

    def get(self, request, pk):
        check = selectors.check_get(actor=request.user, pk=pk)
        if not check.report_key:
            raise Http404("This check has no drift report.")
        response = HttpResponse(artifact_store().get_bytes(check.report_key), content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = REPORT_CSP
        response["X-Frame-Options"] = "SAMEORIGIN"
        return response


# --- Alerts ---------------------------------------------------------------------------------------------------------
class AlertListView(LoginRequiredMixin, View):
    def get(self, request):
        status = request.GET.get("status", "unresolved")
        if status not in ("unresolved", "all", *AlertStatus.values):
            status = "unresolved"
        alerts = selectors.alert_list(actor=request.user, status=None if status == "all" else status)
        context = {"page_obj": paginate(request, alerts), "status": status, "statuses": AlertStatus.choices}
        return render(request, "monitoring/alert_list.html", context)


def _alert_context(request, alert, form=None) -> dict:
    return {
        "alert": alert,
        "deployment": alert.monitor.deployment,
        "retrainings": list(alert.retrainings.select_related("experiment", "new_version", "promotion_request")),
        "can_handle": can(request.user, Action.ALERT_HANDLE, alert.monitor.deployment.project),
        "form": form or NoteForm(),
    }


class AlertDetailView(LoginRequiredMixin, View):
    def get(self, request, pk, form=None, status=200):
        alert = selectors.alert_get(actor=request.user, pk=pk)
        return render(request, "monitoring/alert_detail.html", _alert_context(request, alert, form), status=status)


class AlertActionView(LoginRequiredMixin, View):
    def post(self, request, pk, action: str):
        alert = selectors.alert_get(actor=request.user, pk=pk)
        form = NoteForm(request.POST)
        form.is_valid()
        service = {"acknowledge": check_services.alert_acknowledge, "resolve": check_services.alert_resolve}.get(action)
        if service is None:
            raise Http404("No such action.")
        try:
            service(alert=alert, actor=request.user, note=form.cleaned_data.get("note", ""))
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return AlertDetailView().get(request, pk, form=form, status=_error_status(error))
        messages.success(request, f"Alert {'acknowledged' if action == 'acknowledge' else 'resolved'}.")
        return redirect("monitoring:alert", pk=alert.pk)
