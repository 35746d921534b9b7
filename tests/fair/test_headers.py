"""Security headers on every answer (fair.headers): the CSP runs no inline script and lets no
site frame the fair; nosniff; a Referrer-Policy; HSTS only under FAIR_ENV=production."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fair import create_app
from fair.extensions import db
from tests.conftest import base_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/", "/sign-in", "/register", "/catalogue", "/api/v1/fairs", "/no-such-page"]


def policy(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in
            (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = policy(response.headers["Content-Security-Policy"])
    assert csp["script-src"][0] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_stripe_js_may_load_and_frame_its_card_form(client: FlaskClient) -> None:
    csp = policy(client.get("/").headers["Content-Security-Policy"])
    assert "https://js.stripe.com" in csp["script-src"]
    assert "https://js.stripe.com" in csp["frame-src"]
    assert "https://api.stripe.com" in csp["connect-src"]


@pytest.fixture
def production_app(tmp_path: Path, migrated_database: Path) -> Iterator[Flask]:
    database_file = tmp_path / "production.sqlite"
    shutil.copy(migrated_database, database_file)
    app = create_app({**base_config(tmp_path, database_file), "FAIR_ENV": "production",
                      "SESSION_COOKIE_SECURE": True})
    yield app
    with app.app_context():
        db.engine.dispose()


def test_hsts_only_in_production_over_https(production_app: Flask) -> None:
    client = production_app.test_client()
    secure = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert client.get("/").status_code == 200  # plain http (behind the proxy) is not redirected


TEMPLATES = sorted(path for package in ("fair", "exhibitors", "deals", "livehalls")
                   for path in (ROOT / package).rglob("templates/**/*.html"))
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
EVENT_ATTRIBUTE = re.compile(r"<[^>]+\son[a-z]+\s*=", re.S)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_templates_carry_no_inline_script(template: Path) -> None:
    text = template.read_text()
    assert INLINE_SCRIPT.findall(text) == []
    assert EVENT_ATTRIBUTE.findall(text) == []
    assert "javascript:" not in text


def test_the_template_list_is_not_empty() -> None:
    assert len(TEMPLATES) > 10
