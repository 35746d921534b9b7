"""Declarative base, shared column types, and how a use case runs: its transaction and what
runs after its commit."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, func
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from fair.errors import Conflict

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: Flask-SQLAlchemy, unbound (create_app binds it); fair.extensions lists it with the others. It
#: is made here, beside its Base, because the use cases below run in its session.
db = SQLAlchemy(model_class=Base)


IntPK = Annotated[int, mapped_column(Integer, primary_key=True)]
#: Money is always integer fen (分); see fair/money.py.
Fen = Annotated[int, mapped_column(BigInteger, nullable=False)]
CreatedAt = Annotated[
    dt.datetime,
    mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now()),
]


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: PostgreSQL's codes for "try the whole transaction again": serialization failure, deadlock.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: How many times a use case declared with ``retry=True`` runs before it answers busy.
ATTEMPTS = 4


def use_case(*, retry: bool = False, keep_loaded: bool = False
             ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a use case: one transaction, committed when it returns, rolled back when it fails.

    ``retry``: when PostgreSQL asks for the whole transaction again (a serialization failure or
    a deadlock), run it again, up to ATTEMPTS times after a short random pause, then refuse it
    as ``busy`` (409, Retry-After). For use cases whose rows other writers may take in another
    order than theirs.

    ``keep_loaded``: the session's objects stay as they are across the commit instead of
    expiring. For a use case whose answer is what it just wrote: expiring would load it all
    again, a round trip, to write the answer.
    """

    def declare(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            session = db.session()
            expiring = session.expire_on_commit
            if keep_loaded:
                session.expire_on_commit = False
            try:
                return _attempt(fn, args, kwargs, attempts=ATTEMPTS if retry else 1)
            finally:
                session.expire_on_commit = expiring

        return run

    return declare


def _attempt(fn: Callable[..., R], args: Any, kwargs: Any, *, attempts: int) -> R:
    for attempt in range(1, attempts + 1):
        try:
            return _commit_or_roll_back(fn, args, kwargs)
        except DBAPIError as error:
            if attempts == 1 or getattr(error.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            if attempt == attempts:
                raise Conflict(_l("系统繁忙，请再次提交同一请求。"),
                               code="busy", headers={"Retry-After": "1"}) from error
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter only
    raise AssertionError("unreachable")


def _commit_or_roll_back(fn: Callable[..., R], args: Any, kwargs: Any) -> R:
    try:
        result = fn(*args, **kwargs)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return result


# --- After commit -------------------------------------------------------------------------

#: Where the actions of the session's open transaction wait: ``session.info[AFTER_COMMIT]``.
AFTER_COMMIT = "fair.after_commit"


def after_commit(action: Callable[[], object]) -> None:
    """Run `action` once the session's transaction commits; drop it if it rolls back.

    Actions run in the order queued, each once, after the commit: the transaction is over, so
    an action uses no session (one that needs the database opens an app context, and with it
    a session, of its own). One that raises is logged and the others still run. Queued inside
    a savepoint, an action is dropped if the savepoint rolls back and waits for the outer
    commit if it is released. With no transaction open (the session has read and changed
    nothing since its last commit) there is nothing to wait for, and the action runs at once.
    """
    _queue(_Queued(action), None)


def after_commit_batched(deliver: Callable[[list[T]], object], item: T) -> None:
    """Hand `item` to `deliver` after the commit, with every other item the transaction
    handed it: one call of `deliver` per transaction instead of an action per item, at the
    place of the first item in the order of the actions (see ``after_commit``)."""
    _queue(_Queued(deliver, batch=[item]), item)


@dataclass
class _Queued:
    #: Called with no argument, or with the batch when there is one.
    action: Callable[..., object]
    batch: list[Any] | None = None
    #: The savepoint it was queued in, None for the transaction itself.
    savepoint: SessionTransaction | None = None

    def run(self) -> None:
        if self.batch is None:
            self.action()
        else:
            self.action(self.batch)


def _queue(queued: _Queued, item: Any) -> None:
    session = db.session()
    if not session.in_transaction():
        _run([queued])
        return
    queued.savepoint = session.get_nested_transaction()
    waiting: list[_Queued] = session.info.setdefault(AFTER_COMMIT, [])
    if queued.batch is not None:
        for earlier in reversed(waiting):
            if earlier.action == queued.action and earlier.savepoint is queued.savepoint:
                assert earlier.batch is not None  # noqa: S101 - batched like this one
                earlier.batch.append(item)
                return
    waiting.append(queued)


def _run(actions: list[_Queued]) -> None:
    for queued in actions:
        try:
            queued.run()
        except Exception:
            logger.exception("An action after commit failed: %r", queued.action)


def _enclosing(transaction: SessionTransaction) -> SessionTransaction | None:
    """The savepoint a transaction is inside, None when it is inside no savepoint."""
    parent = transaction.parent
    while parent is not None and not parent.nested:
        parent = parent.parent
    return parent


def _inside(savepoint: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while savepoint is not None:
        if savepoint is outer:
            return True
        savepoint = _enclosing(savepoint)
    return False


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    waiting: list[_Queued] | None = session.info.get(AFTER_COMMIT)
    if not waiting:
        return
    released = session.get_nested_transaction()
    if released is not None:
        # A savepoint released: what it queued waits for the savepoint around it, if any.
        enclosing = _enclosing(released)
        for queued in waiting:
            if queued.savepoint is released:
                queued.savepoint = enclosing
        return
    del session.info[AFTER_COMMIT]
    _run(waiting)


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    waiting: list[_Queued] | None = session.info.get(AFTER_COMMIT)
    if not waiting:
        return
    savepoint = session.get_nested_transaction()
    if savepoint is None:
        del session.info[AFTER_COMMIT]
    else:
        waiting[:] = [queued for queued in waiting if not _inside(queued.savepoint, savepoint)]


@event.listens_for(Session, "after_transaction_end")
def _drop_unfinished(session: Session, transaction: SessionTransaction) -> None:
    # A transaction closed without a commit or a rollback (Session.close) ran nothing.
    if transaction.parent is None:
        session.info.pop(AFTER_COMMIT, None)


def execute_as_own_transaction(statement: sa.Executable, parameters: dict[str, Any]
                               ) -> sa.Result[Any]:
    """Execute a statement that is the whole of what a use case writes, as its own transaction.

    On PostgreSQL, when the session has not used a connection yet in its transaction, the
    statement runs in autocommit: one round trip instead of three (BEGIN, it, COMMIT), and the
    locks it takes last only as long as it runs. Otherwise (SQLite, or the use case read through
    the session first) it joins the session's transaction like any statement. Either way the
    session's commit and rollback go on as usual, and so do the actions queued for after the
    commit (``after_commit``).
    """
    session = db.session()
    transaction = session.get_transaction()
    bind = session.get_bind()
    # SQLAlchemy keeps a transaction's connections in `_connections`; asking it for a new one
    # with options when it has one only warns and ignores them.
    fresh = transaction is None or bind not in transaction._connections
    if fresh and bind.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session.execute(statement, parameters)


#: Seconds a pooled connection may sit unused before it is pinged on its way out of the pool.
PING_IDLE_AFTER = 5.0
_IDLE_SINCE = "fair.idle_since"


def ping_idle_connections(engine: Engine, *, after: float | None = None) -> None:
    """Ping a pooled connection before use when it sat idle for `after` (PING_IDLE_AFTER) s.

    ``pool_pre_ping`` pings on every checkout, a round trip per request, while a busy server
    takes its connections back within milliseconds. A connection that idled (the kind a database
    restart or a firewall kills unnoticed) is still tested; one killed while in use fails that
    request, and SQLAlchemy then drops the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from_now(dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry,
                      proxy: object) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        limit = PING_IDLE_AFTER if after is None else after
        if idle_since is None or time.monotonic() - idle_since < limit:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("The pooled connection is gone.") from error
        if not alive:
            raise DisconnectionError("The pooled connection is gone.")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: object, connection_record: object) -> None:
    """Turn on foreign keys and WAL for SQLite; other databases are left alone."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Read the file through one shared memory map instead of each connection's small page
        # cache: the catalogue's index lookups at 89,000 projects run two to three times faster.
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.close()


def enum_column(enum_class: type, name: str) -> sa.Enum:
    """A portable enum column storing the members' values, with a named CHECK constraint."""
    return sa.Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
