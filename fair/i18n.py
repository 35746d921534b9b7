"""Locale selection: Chinese first, English by a switch."""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, request, session, url_for
from flask_babel import get_locale, refresh

from fair import reference

LOCALES = ("zh", "en")
SESSION_KEY = "locale"
#: Paths whose clients are programs: they choose a language per request, never by session.
API_PREFIXES = ("/api/", "/stripe/")


def select_locale() -> str:
    """The ?lang= switch, then the remembered choice, then the fair's default; the API
    answers in the language of Accept-Language, Chinese when it names neither."""
    if not has_request_context():
        return "zh"  # a command or a background task: nobody reads its messages but logs
    chosen = request.args.get("lang")
    if request.path.startswith(API_PREFIXES):
        if chosen in LOCALES:
            return chosen
        return request.accept_languages.best_match(LOCALES) or "zh"
    if chosen in LOCALES:
        session[SESSION_KEY] = chosen
        return chosen
    remembered = session.get(SESSION_KEY)
    if remembered in LOCALES:
        return str(remembered)
    default = current_app.config["FAIR_LOCALE"]
    return default if default in LOCALES else "zh"


def current_locale() -> str:
    return str(get_locale() or "zh")


def province_label(code: str) -> str:
    """A province's name in the page's language."""
    return reference.province_name(code, current_locale())


def category_label(code: str) -> str:
    """A category's name in the page's language."""
    return reference.category_name(code, current_locale())


def locale_url(locale: str) -> str:
    """This page again, in another language, keeping its query."""
    rule = request.url_rule
    if rule is None or rule.endpoint == "static" or "GET" not in (rule.methods or ()):
        # An error page answering a form's POST: that address cannot be fetched again.
        return url_for("pages.home", lang=locale)
    arguments = {**request.args.to_dict(), "lang": locale}
    return url_for(rule.endpoint, **(request.view_args or {}), **arguments)


def init_app(app: Flask) -> None:
    @app.before_request
    def choose_locale_afresh() -> None:
        # The app context (where Babel caches the locale) can outlive a request, as under
        # the test client; each request picks its own language.
        refresh()

    @app.context_processor
    def locale_context() -> dict[str, object]:
        return {"current_locale": current_locale, "LOCALES": LOCALES, "locale_url": locale_url}
