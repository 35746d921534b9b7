"""The security headers of every answer, set by Flask-Talisman: a Content-Security-Policy that
runs no inline script and lets no other site frame the fair, nosniff, a Referrer-Policy, and
HSTS when FAIR_ENV=production."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask
from flask_talisman import DENY, Talisman

F = TypeVar("F", bound=Callable[..., Any])
STRIPE_API = "https://api.stripe.com"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(config: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """The fair's policy: its own scripts and Stripe.js only, never inline ones."""
    stripe_js = _origin(config["STRIPE_JS_URL"])
    stripe_api = _origin(config["STRIPE_API_BASE"] or STRIPE_API)
    return {
        "default-src": "'self'",
        "script-src": ["'self'", stripe_js],
        # ECharts draws its tooltips, and hls.js its player, with style attributes; styles
        # cannot run code, scripts are what the policy keeps out.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", "https://*.stripe.com"],
        "font-src": ["'self'", "data:"],
        # A hall streams HLS from the http(s) address its organiser gave (hls.js fetches the
        # playlist and plays it through a blob: URL); Stripe.js talks to its API.
        "connect-src": ["'self'", stripe_api, "https:", "http:"],
        "media-src": ["'self'", "blob:", "https:", "http:"],
        "worker-src": ["'self'", "blob:"],
        "frame-src": [stripe_js, "https://hooks.stripe.com"],
        "frame-ancestors": "'none'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
    }


def own_policy(policy: str) -> Callable[[F], F]:
    """This view answers with its own Content-Security-Policy (the media files do)."""

    def mark(view: F) -> F:
        view.talisman_view_options = {"content_security_policy": policy}  # type: ignore[attr-defined]
        return view

    return mark


def init_app(app: Flask) -> None:
    """Talisman for this app (one per app: its policy depends on the app's settings)."""
    production = app.config["FAIR_ENV"] == "production"
    app.extensions["talisman"] = Talisman(
        app,
        content_security_policy=content_security_policy(app.config),
        frame_options=DENY,
        referrer_policy="strict-origin-when-cross-origin",
        # TLS ends at the proxy, which redirects to https; the fair must not loop behind it.
        force_https=False,
        strict_transport_security=production,
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
    )
