from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_POST

from apps.accounts.services import login_success_record, logout_record


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
