"""Inbox and webhook pages. Reads go through apps/notifications/selectors.py (someone else's item is a 404), writes
through apps/notifications/services.py; webhooks are for admins (WEBHOOK_MANAGE), everyone else gets 403."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache

from apps.accounts.permissions import Action, can, require
from apps.core.exceptions import ApplicationError
from apps.core.pagination import paginate
from apps.notifications.forms import WebhookForm
from apps.notifications.models import Notification, Webhook
from apps.notifications.selectors import (
    notification_get,
    notification_list,
    notification_unread_count,
    webhook_delivery_list,
    webhook_get,
    webhook_list,
)
from apps.notifications.services import (
    notification_mark_read,
    notifications_mark_all_read,
    webhook_create,
    webhook_delete,
    webhook_update,
)
from apps.projects.selectors import project_visible_queryset

INVALID = 400


def _own_notification(request, pk) -> Notification:
    try:
        return notification_get(actor=request.user, pk=pk)
    except Notification.DoesNotExist:
        raise Http404("No such notification.") from None


# --- Inbox ------------------------------------------------------------------------------------------------------
class InboxView(LoginRequiredMixin, View):
    """The signed-in person's notifications, newest first; ?unread=1 shows only unread ones."""

    def get(self, request):
        unread_only = request.GET.get("unread") == "1"
        context = {
            "page_obj": paginate(request, notification_list(actor=request.user, unread_only=unread_only)),
            "unread_only": unread_only,
            "unread_count": notification_unread_count(actor=request.user),
            "can_manage_webhooks": can(request.user, Action.WEBHOOK_MANAGE),
        }
        return render(request, "notifications/notification_list.html", context)


class NotificationOpenView(LoginRequiredMixin, View):
    """Follow an item's link, marking it read on the way (the link is a path in the portal, checked by notify)."""

    def get(self, request, pk):
        notification = notification_mark_read(notification=_own_notification(request, pk), actor=request.user)
        safe = url_has_allowed_host_and_scheme(notification.link, allowed_hosts={request.get_host()})
        return redirect(notification.link if notification.link and safe else "notifications:inbox")


class NotificationReadView(LoginRequiredMixin, View):
    def post(self, request, pk):
        notification_mark_read(notification=_own_notification(request, pk), actor=request.user)
        return redirect("notifications:inbox")


class NotificationReadAllView(LoginRequiredMixin, View):
    def post(self, request):
        count = notifications_mark_all_read(actor=request.user)
        messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
        return redirect("notifications:inbox")


class InboxBadgeView(LoginRequiredMixin, View):
    """The top bar's unread count, loaded by htmx after the page (so no page pays a query for it)."""

    def get(self, request):
        # Rendered without the request: the navigation's context processor would add queries to every poll.
        context = {"unread_count": notification_unread_count(actor=request.user)}
        return HttpResponse(render_to_string("notifications/partials/inbox_badge.html", context))


# --- Webhooks (admins) ------------------------------------------------------------------------------------------
def _projects(request):
    return project_visible_queryset(actor=request.user).order_by("name")


def _webhook(request, pk) -> Webhook:
    try:
        return webhook_get(actor=request.user, pk=pk)
    except Webhook.DoesNotExist:
        raise Http404("No such webhook.") from None


@method_decorator(never_cache, name="dispatch")  # the POST response carries a new webhook's secret
class WebhookListView(LoginRequiredMixin, View):
    """Webhooks, a form to register one, and each one's secret shown once, in the response that created it."""

    def get(self, request):
        require(request.user, Action.WEBHOOK_MANAGE)
        return self._render(request, WebhookForm(projects=_projects(request)))

    def post(self, request):
        require(request.user, Action.WEBHOOK_MANAGE)
        form = WebhookForm(request.POST, projects=_projects(request))
        if not form.is_valid():
            return self._render(request, form, status=INVALID)
        try:
            webhook, secret = webhook_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as error:
            form.apply_errors(error.errors, message=error.message)
            return self._render(request, form, status=INVALID)
        return self._render(
            request, WebhookForm(projects=_projects(request)), created_webhook=webhook, created_secret=secret
        )

    def _render(self, request, form, status=200, **extra):
        context = {"form": form, "page_obj": paginate(request, webhook_list(actor=request.user)), **extra}
        return render(request, "notifications/webhook_list.html", context, status=status)


class WebhookDetailView(LoginRequiredMixin, View):
    """One webhook and its deliveries, newest first, with their status and last error."""

    def get(self, request, pk):
        webhook = _webhook(request, pk)
        deliveries = webhook_delivery_list(actor=request.user, webhook=webhook)
        context = {"webhook": webhook, "page_obj": paginate(request, deliveries)}
        return render(request, "notifications/webhook_detail.html", context)


class WebhookActiveView(LoginRequiredMixin, View):
    """Pause or resume a webhook (active=0/1)."""

    def post(self, request, pk):
        webhook = webhook_update(
            webhook=_webhook(request, pk), actor=request.user, active=request.POST.get("active") == "1"
        )
        messages.success(request, f"The webhook “{webhook.name}” is {'active' if webhook.active else 'paused'}.")
        return redirect("notifications:webhook", pk=webhook.pk)


class WebhookDeleteView(LoginRequiredMixin, View):
    def post(self, request, pk):
        webhook = _webhook(request, pk)
        webhook_delete(webhook=webhook, actor=request.user)
        messages.success(request, f"The webhook “{webhook.name}” is removed.")
        return redirect("notifications:webhooks")
