from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.accounts.forms import ApiTokenForm, UserCreateForm, UserFilterForm, UserRoleForm, form_add_application_error
from apps.accounts.permissions import Action, require
from apps.accounts.selectors import api_token_list, api_token_visible_to, membership_list_for_user, user_list
from apps.accounts.services import (
    api_token_create,
    api_token_revoke,
    api_token_revoke_all,
    login_success_record,
    logout_record,
    user_create,
    user_role_change,
    user_set_active,
)
from apps.core.exceptions import ApplicationError
from apps.core.pagination import HTML_PAGE_SIZE, paginate


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        login_success_record(user=form.get_user(), method="password")
        return response


@require_POST
@login_required
def logout_view(request):
    logout_record(user=request.user)
    response = auth_views.LogoutView.as_view()(request)
    messages.info(request, "You are logged out.")
    return response


class ActionRequiredMixin:
    """Asks the policy module before any handler runs; a refusal is Django's PermissionDenied (403)."""

    required_action: Action

    def dispatch(self, request, *args, **kwargs):
        require(request.user, self.required_action)
        return super().dispatch(request, *args, **kwargs)


# --- The user's own settings and API tokens --------------------------------------------------------------------
@method_decorator(never_cache, name="dispatch")  # the POST response carries a token secret: never cache it
class UserSettingsView(LoginRequiredMixin, ActionRequiredMixin, View):
    """Profile and personal API tokens. A new token's secret is rendered once, in the POST response itself."""

    required_action = Action.TOKEN_MANAGE_OWN
    template_name = "accounts/user_settings.html"

    def get(self, request):
        return self._render(request, ApiTokenForm())

    def post(self, request):
        form = ApiTokenForm(request.POST)
        if not form.is_valid():
            return self._render(request, form)
        try:
            token, secret = api_token_create(
                user=request.user, name=form.cleaned_data["name"], expires_in_days=form.cleaned_data["expires_in_days"]
            )
        except ApplicationError as exc:
            form_add_application_error(form, exc)
            return self._render(request, form)
        return self._render(request, ApiTokenForm(), created_token=token, created_secret=secret)

    def _render(self, request, form, **extra):
        context = {"form": form, "page_obj": paginate(request, api_token_list(user=request.user)), **extra}
        return render(request, self.template_name, context)


class ApiTokenRevokeView(LoginRequiredMixin, View):
    """Revoke one token: one's own, or anyone's for an admin. Someone else's token is a 404 for everyone else."""

    http_method_names = ["post"]

    def post(self, request, pk):
        token = get_object_or_404(api_token_visible_to(actor=request.user), pk=pk)
        try:
            api_token_revoke(token=token, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Token “{token.name}” revoked. Scripts using it are now refused.")
        if token.user_id == request.user.pk:
            return redirect("accounts:settings")
        return redirect("accounts:user_detail", pk=token.user_id)


# --- Admin: users --------------------------------------------------------------------------------------------------
class UserListView(LoginRequiredMixin, ActionRequiredMixin, View):
    required_action = Action.USER_MANAGE

    def get(self, request):
        filter_form = UserFilterForm(request.GET)
        page_obj = paginate(request, user_list(**filter_form.filters()))
        return render(request, "accounts/user_list.html", {"filter_form": filter_form, "page_obj": page_obj})


class UserCreateView(LoginRequiredMixin, ActionRequiredMixin, View):
    required_action = Action.USER_MANAGE
    template_name = "accounts/user_form.html"

    def get(self, request):
        return render(request, self.template_name, {"form": UserCreateForm()})

    def post(self, request):
        form = UserCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = user_create(
                    actor=request.user,
                    username=data["username"],
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    role=data["role"],
                    password=data["password"],
                )
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                messages.success(request, f"User {created.username} created. Give them their initial password.")
                return redirect("accounts:user_detail", pk=created.pk)
        return render(request, self.template_name, {"form": form})


class UserDetailView(LoginRequiredMixin, ActionRequiredMixin, View):
    """One user: role, whether they may sign in, their project memberships and their API tokens."""

    required_action = Action.USER_MANAGE
    template_name = "accounts/user_detail.html"

    def get(self, request, pk):
        managed = get_object_or_404(user_list(), pk=pk)
        return self.render_page(request, managed, UserRoleForm(initial={"role": managed.role}))

    @classmethod
    def render_page(cls, request, managed, role_form):
        memberships = paginate(request, membership_list_for_user(user=managed))
        # A second list on the page, so a second page parameter.
        tokens = Paginator(api_token_list(user=managed), HTML_PAGE_SIZE).get_page(request.GET.get("tokens_page"))
        context = {
            "managed": managed,
            "role_form": role_form,
            "page_obj": memberships,
            "tokens_page": tokens,
            "is_self": managed.pk == request.user.pk,
        }
        return render(request, cls.template_name, context)


class UserRoleChangeView(LoginRequiredMixin, ActionRequiredMixin, View):
    required_action = Action.USER_MANAGE
    http_method_names = ["post"]

    def post(self, request, pk):
        managed = get_object_or_404(user_list(), pk=pk)
        form = UserRoleForm(request.POST)
        if form.is_valid():
            before = managed.get_role_display()
            try:
                user_role_change(actor=request.user, user=managed, role=form.cleaned_data["role"])
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                messages.success(
                    request, f"{managed.username}: role changed from {before} to {managed.get_role_display()}."
                )
                return redirect("accounts:user_detail", pk=managed.pk)
        managed.refresh_from_db(fields=["role"])
        return UserDetailView.render_page(request, managed, form)


class UserActiveSetView(LoginRequiredMixin, ActionRequiredMixin, View):
    required_action = Action.USER_MANAGE
    http_method_names = ["post"]

    def post(self, request, pk):
        managed = get_object_or_404(user_list(), pk=pk)
        if request.POST.get("active") not in ("0", "1"):
            messages.error(request, "Say whether to activate (1) or deactivate (0) the user.")
            return redirect("accounts:user_detail", pk=managed.pk)
        active = request.POST["active"] == "1"
        try:
            user_set_active(actor=request.user, user=managed, active=active)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            state = "can sign in again" if active else "is deactivated and can no longer sign in or use API tokens"
            messages.success(request, f"{managed.username} {state}.")
        return redirect("accounts:user_detail", pk=managed.pk)


class UserTokensRevokeView(LoginRequiredMixin, ActionRequiredMixin, View):
    required_action = Action.USER_MANAGE
    http_method_names = ["post"]

    def post(self, request, pk):
        managed = get_object_or_404(user_list(), pk=pk)
        count = api_token_revoke_all(user=managed, actor=request.user)
        messages.success(request, f"Revoked {count} active token{'s' if count != 1 else ''} of {managed.username}.")
        return redirect("accounts:user_detail", pk=managed.pk)
