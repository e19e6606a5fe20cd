"""Forms of the settings and user-management pages. They check the shape of the input; services apply the rules."""

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from apps.accounts.choices import Role
from apps.accounts.models import User
from apps.accounts.services import TOKEN_MAX_LIFETIME_DAYS, TOKEN_NAME_MAX_LENGTH
from apps.core.exceptions import ApplicationError


def form_add_application_error(form: forms.Form, exc: ApplicationError, *, field_map: dict[str, str] | None = None):
    """Show a service's refusal on the form: each message next to its field, the rest above the form."""
    field_map = field_map or {}
    placed = False
    for field, messages in exc.errors.items():
        name = field_map.get(field, field)
        for message in messages:
            form.add_error(name if name in form.fields else None, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        help_text="What the token is for, e.g. “laptop CLI” or “nightly export”.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        required=False,
        min_value=1,
        max_value=TOKEN_MAX_LIFETIME_DAYS,
        help_text=f"Optional, 1 to {TOKEN_MAX_LIFETIME_DAYS}. Leave empty for a token that does not expire.",
    )


class UserFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, help_text="Username, name or email")
    role = forms.ChoiceField(label="Role", required=False, choices=[("", "Any role"), *Role.choices])
    active = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), ("1", "Active"), ("0", "Deactivated")]
    )

    def filters(self) -> dict:
        """The selector's keyword arguments for valid input; no filtering for invalid input."""
        if not self.is_valid():
            return {}
        active = self.cleaned_data["active"]
        return {
            "search": self.cleaned_data["q"].strip(),
            "role": self.cleaned_data["role"],
            "is_active": None if active == "" else active == "1",
        }


class UserCreateForm(forms.Form):
    username = forms.CharField(
        max_length=User._meta.get_field("username").max_length,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @/./+/-/_ only.",
    )
    email = forms.EmailField(required=False)
    first_name = forms.CharField(required=False, max_length=150)
    last_name = forms.CharField(required=False, max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.SCIENTIST)
    password = forms.CharField(
        label="Initial password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters, not a common password and not like the username or email.",
    )
    password_confirm = forms.CharField(
        label="Initial password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        cleaned = super().clean()
        password, again = cleaned.get("password"), cleaned.get("password_confirm")
        if password and again and password != again:
            self.add_error("password_confirm", "The two passwords differ.")
        if password:
            # Early feedback with the other fields' errors; user_create checks it again and decides.
            candidate = User(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, label="Platform role")
