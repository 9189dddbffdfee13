"""REST: tokens, users and groups (root only)."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from audit.journal import Action, record

from .api_permissions import IsRoot
from .models import User, UserGroup
from .privileges import Privilege
from .tokens import TokenRefused, issue_token


@extend_schema(
    request=inline_serializer("TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField(),
                                               "name": serializers.CharField(required=False)}),
    responses={200: inline_serializer("TokenResponse", {"token": serializers.CharField(), "name": serializers.CharField(),
                                                        "expires": serializers.DateTimeField()})},
)
@api_view(["POST"])
@permission_classes([AllowAny])
def obtain_token(request):
    """Exchange a user name and password for an API token (`Authorization: Token ...`), named
    `name` (default "api"; asking again with the same name replaces that token). It expires
    after PACS_TOKEN_DAYS days and dies with a password change; see also /accounts/tokens/."""
    username = str(request.data.get("username", ""))
    password = str(request.data.get("password", ""))
    if not username or not password:
        return Response({"detail": "username and password are required"}, status=status.HTTP_400_BAD_REQUEST)
    # authenticate() goes through django-axes (lockout) and journals a failure by its signal.
    user = authenticate(request._request, username=username, password=password)
    if user is None or not user.is_active:
        return Response({"detail": "user name and password did not match"}, status=status.HTTP_401_UNAUTHORIZED)
    try:
        token, key = issue_token(user, str(request.data.get("name", "api")))
    except TokenRefused as refused:
        return Response({"detail": str(refused)}, status=status.HTTP_400_BAD_REQUEST)
    record(Action.LOGIN, request=request._request, user=user, target="API token", detail=f"token {token.name}")
    return Response({"token": key, "name": token.name, "expires": token.expires_at})


class UserSerializer(serializers.ModelSerializer):
    privileges = serializers.ListField(child=serializers.ChoiceField(choices=Privilege.values), required=False)
    groups = serializers.SlugRelatedField(
        source="pacs_groups", slug_field="name", many=True, queryset=UserGroup.objects.all(), required=False
    )
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    must_change_password = serializers.BooleanField(write_only=True, required=False, default=False)
    category = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "is_active", "privileges",
                  "groups", "category", "password", "must_change_password", "last_login", "date_joined"]
        read_only_fields = ["last_login", "date_joined"]

    def validate_password(self, value):
        from django.contrib.auth import password_validation

        password_validation.validate_password(value, self.instance)
        return value

    def validate(self, attrs):
        if self.instance is None and not attrs.get("password"):
            raise serializers.ValidationError({"password": "A new user needs a password."})
        if self.instance is not None and self.instance.is_root:
            for locked in ("username", "privileges", "is_active"):
                if locked in attrs and attrs[locked] != getattr(self.instance, locked):
                    raise serializers.ValidationError({locked: "root's name, privileges and status are fixed."})
        return attrs

    def _apply(self, user: User, validated: dict) -> User:
        groups = validated.pop("pacs_groups", None)
        password = validated.pop("password", None)
        must_change = validated.pop("must_change_password", False)
        for name, value in validated.items():
            setattr(user, name, value)
        if password:
            user.set_password(password)
            if must_change:
                user.password_changed_at = None
        user.save()
        if groups is not None:
            user.pacs_groups.set(groups)
        return user

    def create(self, validated):
        return self._apply(User(), validated)

    def update(self, instance, validated):
        return self._apply(instance, validated)


class GroupSerializer(serializers.ModelSerializer):
    privileges = serializers.ListField(child=serializers.ChoiceField(choices=Privilege.values), required=False)
    members = serializers.SlugRelatedField(slug_field="username", many=True, queryset=User.objects.all(), required=False)

    class Meta:
        model = UserGroup
        fields = ["id", "name", "description", "privileges", "members"]


class JournaledAdminViewSet(viewsets.ModelViewSet):
    """Root-only administration; every change is journaled. Deleting is not offered here:
    disable a user with PATCH {"is_active": false}."""

    permission_classes = [IsRoot]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    noun = ""

    def perform_create(self, serializer):
        obj = serializer.save()
        record(Action.USER_ADMIN, request=self.request._request, target=f"created {self.noun} {obj}")

    def perform_update(self, serializer):
        obj = serializer.save()
        changed = ", ".join(sorted(k for k in serializer.validated_data if k != "password"))
        record(Action.USER_ADMIN, request=self.request._request, target=f"changed {self.noun} {obj}", detail=changed)


class UserViewSet(JournaledAdminViewSet):
    queryset = User.objects.order_by("username").prefetch_related("pacs_groups")
    serializer_class = UserSerializer
    noun = "user"


class GroupViewSet(JournaledAdminViewSet):
    queryset = UserGroup.objects.prefetch_related("members")
    serializer_class = GroupSerializer
    noun = "group"
