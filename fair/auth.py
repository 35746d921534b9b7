"""Who is making this request: a bearer token (API clients) or the session cookie (browsers)."""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError

from fair.accounts import service as account_service
from fair.accounts.models import User
from fair.errors import Forbidden, Unauthorized
from fair.extensions import csrf

SESSION_KEY = "user_id"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def current_user() -> User | None:
    """The user of this request, loaded once."""
    if "fair_user" not in g:
        g.fair_user = _load_user()
    user: User | None = g.fair_user
    return user


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _load_user() -> User | None:
    token = bearer_token()
    if token is not None:
        user = account_service.user_for_token(token)
        if user is None:
            raise Unauthorized(_l("令牌无效或已被撤销。"), code="bad_token")
        return user
    user_id = session.get(SESSION_KEY)
    if user_id is None:
        return None
    return account_service.get_user(int(user_id))


def sign_in(user: User) -> None:
    session.clear()
    session[SESSION_KEY] = user.id
    g.fair_user = user


def sign_out() -> None:
    session.clear()
    g.fair_user = None


def init_app(app: Flask) -> None:
    """Protect cookie-authenticated API calls with CSRF too: a browser sends the cookie and, on
    unsafe methods, a CSRF token. A bearer call carries no ambient credential, so it needs none."""

    @app.before_request
    def check_api_csrf() -> None:
        # The app context (and g) can outlive a request, as under the test client.
        g.pop("fair_user", None)
        if (
            request.path.startswith("/api/")
            and request.method in UNSAFE_METHODS
            and bearer_token() is None
            and session.get(SESSION_KEY) is not None
        ):
            try:
                csrf.protect()
            except CSRFError as error:
                raise Forbidden(_l("页面已过期，请刷新后重试。"), code="csrf") from error
