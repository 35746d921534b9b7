"""Locale selection: Chinese first, English by a switch."""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import get_locale

LOCALES = ("zh", "en")
SESSION_KEY = "locale"


def select_locale() -> str:
    """The ?lang= switch, then the remembered choice, then the fair's default."""
    chosen = request.args.get("lang")
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


def init_app(app: Flask) -> None:
    @app.context_processor
    def locale_context() -> dict[str, object]:
        return {"current_locale": current_locale, "LOCALES": LOCALES}
