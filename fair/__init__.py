"""The fair: a virtual trade-fair marketplace for cultural and tourism services."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from fair import auth, extensions, guard, headers, i18n, money, tasks
from fair.config import database_settings, from_environ
from fair.database import ping_idle_connections
from fair.errors import register_error_handlers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

# The factory may import every package (an exception the import contracts in pyproject.toml
# list). It does so inside the register_* functions: this module runs whenever any fair module
# is imported, and every package imports fair.


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the fair's Flask application."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(from_environ(os.environ, app.instance_path))
    if config is not None:
        app.config.update(config)
    register_models()
    register_extensions(app)
    register_template_filters(app)
    register_blueprints(app)
    register_socketio_handlers(app)
    register_error_handlers(app)
    register_tasks(app)
    register_commands(app)
    return app


def register_models() -> None:
    """Import every package's models so that the metadata (and Alembic) sees all tables."""
    import audience.models
    import deals.models
    import exhibitors.models
    import fair.accounts.models
    import fair.models
    import inbox.models
    import livehalls.models
    import needs.models
    import recommend.models

    # Imported for their side effect on Base.metadata.
    del audience, deals, exhibitors, fair, inbox, livehalls, needs, recommend


def register_extensions(app: Flask) -> None:
    os.makedirs(app.instance_path, exist_ok=True)
    guard.init_app(app)  # first: before CSRF reads a body, before any route is added
    url, engine_options = database_settings(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)
    extensions.db.init_app(app)
    with app.app_context():
        if extensions.db.engine.dialect.name != "sqlite":
            ping_idle_connections(extensions.db.engine)
    extensions.migrate.init_app(app, extensions.db, directory=str(MIGRATIONS))
    extensions.api.init_app(app)
    extensions.csrf.init_app(app)
    register_rate_limits(app)
    headers.init_app(app)
    extensions.babel.init_app(app, locale_selector=i18n.select_locale)
    # The SocketIO object is shared by every app made in this process (tests make many); it keeps
    # the previous app's message queue in server_options unless told otherwise.
    extensions.socketio.server_options.pop("client_manager", None)
    manager: dict[str, Any] = {}
    if app.config["REDIS_URL"]:
        from livehalls import broadcast

        manager["client_manager"] = broadcast.news_redis_manager(app, app.config["REDIS_URL"])
    extensions.socketio.init_app(
        app,
        message_queue=app.config["REDIS_URL"],
        async_mode=app.config["SOCKETIO_ASYNC_MODE"] or socketio_async_mode(),
        # None: a browser connection must come from the fair's own origin (the Host it was
        # asked on), so that another site's page cannot connect with a visitor's cookie.
        cors_allowed_origins=app.config["ALLOWED_ORIGINS"] or None,
        **manager,
    )
    auth.init_app(app)
    i18n.init_app(app)


def register_rate_limits(app: Flask) -> None:
    """Flask-Limiter on Redis when REDIS_URL is set (every process counts alike), in memory
    otherwise; behind trusted proxies, the client address is the one they forwarded."""
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=hops)
    if app.config["REDIS_URL"]:
        app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                              {"key_prefix": f"{app.config['REDIS_PREFIX']}:limits"})
    else:
        app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    extensions.limiter.init_app(app)


def socketio_async_mode() -> str:
    """gevent where gunicorn's gevent worker patched the process, threading everywhere else.

    Left to itself Socket.IO picks gevent whenever it is installed; in an unpatched process (the
    CLI's `fair simulate`, `flask run`, the tests) its background tasks, such as the broadcast
    coalescer, would then never run while the main code blocks.
    """
    from gevent import monkey

    return "gevent" if monkey.is_module_patched("socket") else "threading"


def register_template_filters(app: Flask) -> None:
    """Pages format money and name provinces and categories only through these."""
    app.add_template_filter(money.format_yuan, "yuan")
    app.add_template_filter(money.format_yuan_grouped, "yuan_grouped")
    app.add_template_filter(money.format_yuan_short, "yuan_short")
    app.add_template_filter(money.format_wan, "wan")
    app.add_template_filter(functools.partial(money.parse_yuan, allow_zero=True), "fen")
    app.jinja_env.globals["MAX_DEAL_FEN"] = money.MAX_DEAL_FEN  # the limit a form shows
    app.add_template_filter(i18n.province_label, "province")
    app.add_template_filter(i18n.category_label, "category")


def register_blueprints(app: Flask) -> None:
    """Every package's API (`blp`) and pages (`bp`), listed so that they can be read."""
    from audience import api as audience_api
    from deals import api as deals_api
    from exhibitors import api as exhibitors_api
    from fair import api as fair_api
    from fair.accounts import api as accounts_api
    from inbox import api as inbox_api
    from livehalls import api as livehalls_api
    from needs import api as needs_api
    from recommend import api as recommend_api

    for blp in (accounts_api.blp, fair_api.blp, exhibitors_api.blp, exhibitors_api.media_blp,
                deals_api.blp, livehalls_api.blp, audience_api.blp, recommend_api.blp,
                needs_api.blp, inbox_api.blp):
        extensions.csrf.exempt(blp)  # fair.auth checks CSRF for cookie-authenticated API calls
        extensions.api.register_blueprint(blp)

    from audience import recording
    from audience import views as audience_views
    from deals import views as deals_views
    from exhibitors import service as exhibitor_service
    from exhibitors import views as exhibitors_views
    from fair import views as fair_views
    from fair.accounts import views as accounts_views
    from inbox import views as inbox_views
    from livehalls import service as hall_service
    from livehalls import views as livehalls_views
    from needs import views as needs_views
    from recommend import views as recommend_views

    for bp in (fair_views.bp, accounts_views.bp, exhibitors_views.bp, deals_views.bp,
               livehalls_views.bp, audience_views.bp, recommend_views.bp, needs_views.bp,
               inbox_views.bp):
        app.register_blueprint(bp)
    needs_views.init_app(app)  # the portal's "needs that match your projects"
    inbox_views.init_app(app)  # the unread count in every page's header
    recording.init_app(app)  # the visitor cookie, the event buffer, the packages' signals
    recommend_views.init_app(app)  # the strips' template globals for the pages below it
    fair_views.init_app(app, readers=fair_views.Readers(
        catalogue=exhibitor_service.fair_figures, halls=hall_service.count_halls,
        programme=hall_service.programme))

    from deals import webhooks

    webhooks.init_app(app)  # POST /stripe/webhook (signed by Stripe), payment template helpers


def register_socketio_handlers(app: Flask) -> None:
    """Socket.IO handlers, presence, and the broadcaster with the readers of what it sends."""
    from deals import ticker
    from deals import totals as deal_totals
    from inbox import service as inbox_service
    from livehalls import broadcast, events, presence

    events.register(extensions.socketio)
    presence.init_app(app)
    broadcast.init_app(app, readers=broadcast.Readers(
        totals=deal_totals.read_totals, seqs=deal_totals.read_seqs, deals=ticker.read_deals,
        unread=inbox_service.unread_counts))


def register_tasks(app: Flask) -> None:
    """Bind the task queue to the app; import every module that declares tasks, so that a
    consumer (`huey_consumer wsgi.huey`) knows them all."""
    import audience.service
    import deals.payments
    import inbox.service
    import livehalls.streaming
    import needs.service
    import recommend.service

    # Imported for their tasks (send_refund, retry_refunds, make_replay, expire_events,
    # rebuild_task, rebuild_open_fairs, send_email_task, match_need_task, pass_deadlines_task).
    del audience, deals, inbox, livehalls, needs, recommend
    tasks.init_app(app)


def register_commands(app: Flask) -> None:
    from deals.simulate import simulate_command
    from fair.cli import fair_cli
    from livehalls.mediaserver import demo_push_command, media_server_command
    from recommend.cli import recommendations_command

    fair_cli.add_command(simulate_command)
    fair_cli.add_command(media_server_command)
    fair_cli.add_command(demo_push_command)
    fair_cli.add_command(recommendations_command)
    app.cli.add_command(fair_cli)
