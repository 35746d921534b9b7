"""Account use cases: register, authenticate, tokens, organisers."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached

from fair.accounts.models import ApiToken, Organisation, Role, User
from fair.blocking import run_blocking
from fair.database import use_case, utcnow
from fair.errors import Conflict, InvalidInput, Unauthorized
from fair.extensions import db
from fair.reference import PROVINCES

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10

#: A phone as people write it: digits with an optional +, spaces, dashes and brackets.
PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{5,28}[0-9]")


def normalise_email(email: str) -> str:
    return email.strip().lower()


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, as zxcvbn ships them (from leaked password lists)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, *, email: str) -> None:
    """Refuse a password that is short, among the most common, or the e-mail itself (ASVS 5.0
    6.2: at least 10 characters, no common or context-specific passwords)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(_l("密码至少 10 个字符。"), code="password_too_short",
                           fields={"password": [_l("密码至少 10 个字符。")]})
    folded = password.strip().lower()
    if folded == normalise_email(email) or folded == normalise_email(email).split("@")[0]:
        raise InvalidInput(_l("密码不能与邮箱相同。"), code="password_is_email",
                           fields={"password": [_l("密码不能与邮箱相同。")]})
    if folded in common_passwords():
        raise InvalidInput(_l("这个密码太常见，容易被猜中，请换一个。"), code="common_password",
                           fields={"password": [_l("这个密码太常见，容易被猜中，请换一个。")]})


def hash_password(password: str) -> str:
    # Argon2 takes tens of milliseconds of CPU on purpose: off the event loop (fair.blocking).
    return run_blocking(_hasher.hash, password)


def _check_password(user: User, password: str) -> bool:
    try:
        return run_blocking(_hasher.verify, user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


@use_case()
def register_user(
    *,
    email: str,
    password: str,
    name: str,
    role: Role,
    organisation_name: str,
    province: str,
    phone: str = "",
) -> User:
    """Register an exhibitor or a buyer with their organisation; a buyer gives a phone, which
    the exhibitors it signs intents with will see."""
    if role is Role.organiser:
        raise InvalidInput(_l("主办方账号由运营人员创建。"), fields={"role": [_l("不可以")]})
    if province not in PROVINCES:
        raise InvalidInput(fields={"organisation": {"province": [_l("未知的省份代码。")]}})
    check_password(password, email=email)
    phone = " ".join(phone.split())
    if role is Role.buyer and not phone:
        raise InvalidInput(fields={"phone": [_l("采购方请填写联系电话。")]})
    if phone and not PHONE.fullmatch(phone):
        raise InvalidInput(fields={"phone": [_l("请填写有效的电话号码，例如 028-12345678。")]})
    if find_user(email) is not None:
        raise Conflict(_l("该邮箱已注册。"), code="email_taken")
    organisation = Organisation(name=organisation_name.strip(), province=province)
    user = User(
        email=normalise_email(email),
        password_hash=hash_password(password),
        name=name.strip(),
        phone=phone,
        role=role,
        organisation=organisation,
    )
    db.session.add(user)
    return user


@use_case()
def create_organiser(*, email: str, password: str, name: str = "主办方") -> User:
    """Create an organiser, or reset the password of an existing one."""
    check_password(password, email=email)
    user = find_user(email)
    if user is None:
        user = User(email=normalise_email(email), name=name, role=Role.organiser)
        db.session.add(user)
    elif user.role is not Role.organiser:
        raise Conflict(_l("该邮箱属于参展方或采购方。"), code="email_taken")
    user.password_hash = hash_password(password)
    return user


def authenticate(email: str, password: str) -> User:
    """The user with these credentials, or Unauthorized."""
    user = find_user(email)
    if user is None:
        # Spend the same time as a real check so that timing does not reveal who exists.
        hash_password(password)
        raise Unauthorized(_l("邮箱或密码不正确。"), code="bad_credentials")
    if not _check_password(user, password):
        raise Unauthorized(_l("邮箱或密码不正确。"), code="bad_credentials")
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@use_case()
def issue_token(user: User) -> str:
    """A new bearer token; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token)))
    return token


#: Seconds a process trusts a bearer token it has looked up without asking the database again:
#: an API client signs many intents a second with one token. Revoking a token takes effect at
#: once in the process that revoked it, and within this long in every other.
TRUSTED_TOKEN_SECONDS = 5.0
MAX_TRUSTED_TOKENS = 10_000
TRUSTED_TOKENS_KEY = "accounts.trusted_tokens"


@dataclass(frozen=True)
class _TrustedToken:
    """A token's user and organisation as stored (column values), and until when to trust it."""

    user: dict[str, Any]
    organisation: dict[str, Any] | None
    until: float


def user_for_token(token: str) -> User | None:
    """The user of a bearer token, or None when it is unknown or revoked."""
    token_hash = _token_hash(token)
    trusted: dict[str, _TrustedToken] = current_app.extensions.setdefault(TRUSTED_TOKENS_KEY, {})
    known = trusted.get(token_hash)
    if known is not None and known.until > time.monotonic():
        return _as_stored(known)
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if api_token is None or api_token.revoked_at is not None:
        trusted.pop(token_hash, None)
        return None
    if len(trusted) >= MAX_TRUSTED_TOKENS:
        trusted.clear()
    user = api_token.user
    trusted[token_hash] = _TrustedToken(
        user=_columns(user),
        organisation=None if user.organisation is None else _columns(user.organisation),
        until=time.monotonic() + TRUSTED_TOKEN_SECONDS,
    )
    return user


def _columns(instance: User | Organisation) -> dict[str, Any]:
    return {column.key: getattr(instance, column.key)
            for column in instance.__mapper__.column_attrs}


def _as_stored(known: _TrustedToken) -> User:
    """The trusted user taken into this request's session as stored, without a query."""
    user = User(**known.user)
    if known.organisation is not None:
        organisation = Organisation(**known.organisation)
        make_transient_to_detached(organisation)
        user.organisation = organisation
    make_transient_to_detached(user)
    return db.session.merge(user, load=False)


def revoke_token(token: str) -> None:
    """Revoke a bearer token; this process stops trusting it once the revocation is stored."""
    token_hash = _token_hash(token)
    _revoke(token_hash)
    current_app.extensions.get(TRUSTED_TOKENS_KEY, {}).pop(token_hash, None)


@use_case()
def _revoke(token_hash: str) -> None:
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if api_token is not None and api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
