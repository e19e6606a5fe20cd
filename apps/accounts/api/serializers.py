"""Input serializers check the shape of a request; output serializers render rows. Rules live in the services."""

from rest_framework import serializers

from apps.accounts.choices import ApiTokenStatus, Role
from apps.accounts.models import ApiToken, Membership, User
from apps.accounts.services import TOKEN_MAX_LIFETIME_DAYS, TOKEN_NAME_MAX_LENGTH

DEFAULT_OBTAINED_TOKEN_NAME = "Command line"


# --- Tokens ----------------------------------------------------------------------------------------------------
class ApiTokenCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=TOKEN_MAX_LIFETIME_DAYS
    )


class ApiTokenObtainInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=TOKEN_NAME_MAX_LENGTH, required=False, default=DEFAULT_OBTAINED_TOKEN_NAME)
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=TOKEN_MAX_LIFETIME_DAYS
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=ApiTokenStatus.choices, read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "status"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(serializers.ModelSerializer):
    """A token just created, with its secret: the only answer that ever carries it."""

    token = serializers.SerializerMethodField(help_text="The secret. Shown once; only its SHA-256 is stored.")

    class Meta:
        model = ApiToken
        fields = ["token", "id", "name", "prefix", "expires_at"]
        read_only_fields = fields

    def get_token(self, obj) -> str:
        return self.context["secret"]


# --- Users -----------------------------------------------------------------------------------------------------
class UserMembershipSerializer(serializers.ModelSerializer):
    """One of the caller's projects and their role in it."""

    project_id = serializers.UUIDField(read_only=True)
    project_name = serializers.CharField(source="project.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["project_id", "project_name", "role"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    memberships = UserMembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "role", "memberships"]
        read_only_fields = fields


class UserSerializer(serializers.ModelSerializer):
    membership_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "is_active",
            "last_login",
            "date_joined",
            "membership_count",
        ]
        read_only_fields = fields


class UserFilterInputSerializer(serializers.Serializer):
    """Query parameters of the user list; given as the selector's keyword arguments."""

    q = serializers.CharField(
        required=False, default="", allow_blank=True, source="search", help_text="Search username, name and email"
    )
    role = serializers.ChoiceField(choices=Role.choices, required=False, default="", allow_blank=True)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)


class UserCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    role = serializers.ChoiceField(choices=Role.choices)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)


class UserUpdateInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)
