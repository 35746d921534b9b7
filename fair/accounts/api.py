"""Account API: register, tokens, me."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from fair import permissions, signals
from fair.accounts import limits, service
from fair.accounts.models import Role, User
from fair.accounts.schemas import RegisterSchema, TokenRequestSchema, TokenSchema, UserSchema
from fair.auth import bearer_token, current_user

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts and tokens")


@blp.post("/auth/register")
@limits.registration_limited
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
def register(data: dict[str, Any]) -> User:
    """Register an exhibitor or a buyer with their organisation."""
    return service.register_user(
        email=data["email"],
        password=data["password"],
        name=data["name"],
        role=Role(data["role"]),
        organisation_name=data["organisation"]["name"],
        province=data["organisation"]["province"],
        phone=data["phone"],
    )


@blp.post("/auth/token")
@limits.sign_in_limited
@blp.arguments(TokenRequestSchema)
@blp.response(200, TokenSchema)
def token(data: dict[str, Any]) -> dict[str, str]:
    """Exchange credentials for a bearer token."""
    user = service.authenticate(data["email"], data["password"])
    issued = service.issue_token(user)
    signals.signed_in.send(None, user=user)
    return {"token": issued}


@blp.post("/auth/token/revoke")
@blp.response(204)
def revoke() -> None:
    """Revoke the bearer token this request carries."""
    permissions.require_user(current_user())
    token_value = bearer_token()
    if token_value is not None:
        service.revoke_token(token_value)


@blp.get("/me")
@blp.response(200, UserSchema)
def me() -> User:
    """The signed-in user with role and organisation."""
    return permissions.require_user(current_user())
