"""How often sign-in and registration may be tried: per account and per client address, with
Flask-Limiter (Redis when REDIS_URL is set, so that every process counts alike)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import current_app, g, request
from werkzeug.wrappers import Response

from fair.accounts.service import normalise_email
from fair.errors import TooManyRequests
from fair.extensions import limiter

F = TypeVar("F", bound=Callable[..., Any])
REFUSED_KEY = "fair_sign_in_refused"



def note_refused_sign_in() -> None:
    """The credentials of this request were wrong: it counts against both sign-in limits."""
    g.setdefault(REFUSED_KEY, True)


def _refused(response: Response) -> bool:
    return response.status_code == 401 or bool(g.get(REFUSED_KEY))


def _account_key() -> str:
    """The account the request tries to sign in to, by its normalised e-mail."""
    data: Any = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if isinstance(data, Mapping) else None
    return f"account:{normalise_email(email)}" if isinstance(email, str) else ""


def _without_account() -> bool:
    return _account_key() == ""


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def sign_in_limited(view: F) -> F:
    """Wrong credentials, counted per account and per client address, across the sign-in page
    and the token endpoint alike; past either limit every try is answered 429 (Retry-After),
    the right password too, until the window ends."""
    per_address = limiter.shared_limit(
        _setting("SIGN_IN_ADDRESS_LIMIT"), scope="sign-in-address", methods=["POST"],
        deduct_when=_refused, error_message=TooManyRequests.message)
    per_account = limiter.shared_limit(
        _setting("SIGN_IN_ACCOUNT_LIMIT"), scope="sign-in-account", key_func=_account_key,
        methods=["POST"], deduct_when=_refused, exempt_when=_without_account,
        error_message=TooManyRequests.message)
    return per_address(per_account(view))  # type: ignore[no-any-return]


def registration_limited(view: F) -> F:
    """Every registration try, per client address: registration says whether an e-mail is
    taken, so it must not become a way to list the fair's accounts."""
    limited = limiter.shared_limit(_setting("REGISTER_ADDRESS_LIMIT"), scope="register",
                                   methods=["POST"], error_message=TooManyRequests.message)
    return limited(view)  # type: ignore[no-any-return]
