"""Who is making this request: a bearer token (API clients) or the session cookie (browsers)."""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError

from fair import signals
from fair.accounts import service as account_service
from fair.accounts.models import User
from fair.errors import Forbidden, Unauthorized
from fair.extensions import csrf

SESSION_KEY = "user_id"
#: The session's own token (an ApiToken row): signing out revokes it, so a copy of the cookie
#: stops working everywhere (within five seconds on other processes, as for bearer tokens).
SESSION_TOKEN_KEY = "session_token"  # noqa: S105 - the name of a session key
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: navigator.sendBeacon cannot send a header, so the beacon goes without the CSRF token: the
#: session cookie is SameSite=Lax (no other site's POST carries it), and the beacon only adds
#: impressions and seconds watched, never state.
CSRF_EXEMPT_PATHS = frozenset({"/api/v1/events"})


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
    return session_user()


def session_user() -> User | None:
    """The user of the session cookie, while its session has not been ended."""
    user_id = session.get(SESSION_KEY)
    token = session.get(SESSION_TOKEN_KEY)
    if user_id is None or not isinstance(token, str):
        return None
    user = account_service.user_for_token(token)
    if user is None or user.id != user_id:
        session.clear()  # signed out elsewhere, or a copy of a cookie that was signed out
        return None
    return user


def sign_in(user: User) -> None:
    session.clear()
    session[SESSION_KEY] = user.id
    session[SESSION_TOKEN_KEY] = account_service.issue_token(user)
    g.fair_user = user
    signals.signed_in.send(None, user=user)


def sign_out() -> None:
    """End the session on the server too: its token is revoked."""
    token = session.get(SESSION_TOKEN_KEY)
    if isinstance(token, str):
        account_service.revoke_token(token)
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
            and request.path not in CSRF_EXEMPT_PATHS
            and request.method in UNSAFE_METHODS
            and bearer_token() is None
            and session.get(SESSION_KEY) is not None
        ):
            try:
                csrf.protect()
            except CSRFError as error:
                raise Forbidden(_l("页面已过期，请刷新后重试。"), code="csrf") from error
