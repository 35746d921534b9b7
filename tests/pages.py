"""Helpers for page tests: the CSRF token a page carries, and signing in through the form."""

from __future__ import annotations

import re

from flask import g
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fair.accounts.models import User
from tests.conftest import PASSWORD

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    # Flask-WTF caches the token on g, and the test's app context (with its g) outlives
    # requests; signing in clears the session, so the cached token would be stale.
    g.pop("csrf_token", None)
    page = client.get(path)
    match = _META.search(page.text)
    assert match is not None, page.text[:500]
    return match.group(1)


def sign_in(client: FlaskClient, user: User) -> None:
    response = client.post("/sign-in", data={"email": user.email, "password": PASSWORD,
                                             "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.text[:2000]


def post_form(client: FlaskClient, path: str, data: dict[str, object] | None = None,
              **kwargs: object) -> TestResponse:
    """POST a page's form with the session's CSRF token, as the page's own form would."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client)}, **kwargs)


def cookie_session(client: FlaskClient, user: User) -> None:
    """Put a signed-in session into the client's cookie, as the sign-in page does: the user and
    the session's own token, which signing out revokes."""
    from fair.accounts import service as account_service
    from fair.auth import SESSION_KEY, SESSION_TOKEN_KEY

    token = account_service.issue_token(user)
    with client.session_transaction() as session:
        session[SESSION_KEY] = user.id
        session[SESSION_TOKEN_KEY] = token
