"""Notifications: tell a user something once, list them, mark them read, count the unread."""

from __future__ import annotations

import functools
import smtplib
from collections.abc import Callable, Collection, Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fair import permissions, tasks
from fair.accounts.models import User
from fair.database import after_commit, use_case, utcnow
from fair.extensions import db
from inbox.models import Notification
from livehalls import broadcast

#: Each kind of notification and its text, written when it is shown (in the reader's
#: language) from the notification's data. Packages that tell users something add theirs here.
KINDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "need_matched": lambda data: _("新的采购需求与您的项目“%(project)s”匹配：%(need)s",
                                   project=data.get("project", ""), need=data.get("need", "")),
    "response_received": lambda data: _("%(exhibitor)s 以“%(project)s”响应了您的需求：%(need)s",
                                        exhibitor=data.get("exhibitor", ""),
                                        project=data.get("project", ""),
                                        need=data.get("need", "")),
    "response_shortlisted": lambda data: _("您对“%(need)s”的响应已入围",
                                           need=data.get("need", "")),
    "response_declined": lambda data: _("您对“%(need)s”的响应未被采纳",
                                        need=data.get("need", "")),
    "response_signed": lambda data: _("采购方已就“%(need)s”与您的项目“%(project)s”签约意向",
                                      need=data.get("need", ""), project=data.get("project", "")),
    "need_closing": lambda data: _("您的需求“%(need)s”将在24小时内截止",
                                   need=data.get("need", "")),
}
#: The newest notifications an inbox lists.
LIST_LIMIT = 100


def text_of(notification: Notification) -> str:
    """What the notification says, in the current language."""
    return KINDS[notification.kind](notification.data or {})


def notify(user_id: int, *, kind: str, data: Mapping[str, Any], link: str,
           dedupe_key: str) -> bool:
    """Tell a user something, in the caller's transaction; once per (user, dedupe_key).

    A retried request, or a task run twice, names the same key and tells nobody again. After
    the commit the user's sockets hear the new unread count. True when it was new.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Notification)
    created = db.session.execute(
        insert.values(user_id=user_id, kind=kind, data=dict(data), link=link,
                      dedupe_key=dedupe_key, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
        .returning(Notification.id)
    ).scalar_one_or_none()
    if created is None:
        return False
    broadcast.unread_changed(user_id, unread=count_unread(user_id))
    if current_app.config.get("SMTP_HOST"):
        after_commit(functools.partial(send_email_task, created))
    return True


def unread_counts(user_ids: Collection[int]) -> dict[int, int]:
    """The unread notifications of each of these users that has any, in one query."""
    return dict(db.session.execute(
        select(Notification.user_id, func.count()).where(
            Notification.user_id.in_(list(user_ids)), Notification.read_at.is_(None))
        .group_by(Notification.user_id)).tuples().all())


def count_unread(user_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ) or 0


def list_notifications(user: User | None, *, limit: int = LIST_LIMIT) -> Sequence[Notification]:
    """The user's notifications, newest first."""
    user = permissions.require_user(user)
    return db.session.scalars(
        select(Notification).where(Notification.user_id == user.id)
        .order_by(Notification.id.desc()).limit(limit)
    ).all()


@use_case()
def mark_read(user: User | None, *, ids: Sequence[int] | None = None) -> int:
    """Mark the user's notifications read (these, or all); the unread count after it."""
    user = permissions.require_user(user)
    query = update(Notification).where(Notification.user_id == user.id,
                                       Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    changed = db.session.execute(query.values(read_at=utcnow())
                                 .execution_options(synchronize_session=False)).rowcount
    unread = count_unread(user.id)
    if changed:
        broadcast.unread_changed(user.id, unread=unread)
    return unread


@use_case()
def _claim_email(notification_id: int) -> tuple[str, str, str] | None:
    """Take a notification to e-mail it: its address, subject and link, or None when another
    run took it first (each notification is e-mailed once)."""
    claimed = db.session.execute(
        update(Notification).where(Notification.id == notification_id,
                                   Notification.emailed_at.is_(None))
        .values(emailed_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    notification = db.session.get(Notification, notification_id)
    if not claimed or notification is None:
        return None
    user = db.session.get(User, notification.user_id)
    if user is None:
        return None
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        return user.email, text_of(notification), notification.link


def send_email(notification_id: int) -> bool:
    """E-mail a notification through the configured SMTP server, once; True when sent now."""
    claimed = _claim_email(notification_id)
    if claimed is None:
        return False
    address, subject, link = claimed
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = address
    message["Subject"] = subject
    message.set_content(f"{subject}\n\n{link}\n")
    with smtplib.SMTP(current_app.config["SMTP_HOST"], current_app.config["SMTP_PORT"],
                      timeout=10) as smtp:
        smtp.send_message(message)
    return True


@tasks.task()
def send_email_task(notification_id: int) -> None:
    """E-mail a notification (queued after the commit that made it)."""
    send_email(notification_id)
