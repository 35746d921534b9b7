"""Browser tests: Debian's Chromium through Playwright, against a real gunicorn server.

The server serves the test's own SQLite file, so data made with the usual factories (`fair`,
`make_project`...) is there; `signed_in(context, user)` gives a browser the user's session;
`fair_cli("fair", "create-organiser", ...)` runs an operator's command on the same database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Playwright, sync_playwright

from fair.accounts import service as account_service
from fair.accounts.models import User
from fair.auth import SESSION_KEY, SESSION_TOKEN_KEY
from tests.serving import ROOT, SECRET_KEY, SENDS_LOGGER, Server, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Screenshots land here (gitignored) for a person to look at.
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing; `make chromium` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI runs every layer: a missing browser is a failure
        pytest.skip(message)
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


#: Reports every Content-Security-Policy violation of a page to its console, where the watcher
#: below collects it (Chromium logs most, not all, of them by itself).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ` +
                `${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture(autouse=True)
def no_csp_violations(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every browser test fails on a CSP violation in any of its pages: the hall player,
    ECharts and Stripe.js must work under the policy the server sends."""
    violations: list[str] = []
    new_context = browser.new_context

    def watched(*args: object, **kwargs: object) -> BrowserContext:
        context = new_context(*args, **kwargs)  # type: ignore[arg-type]
        context.add_init_script(REPORT_CSP_VIOLATIONS)

        def collect(message: ConsoleMessage) -> None:
            if message.type == "error" and "Content Security Policy" in message.text:
                violations.append(message.text)

        context.on("console", collect)
        return context

    monkeypatch.setattr(browser, "new_context", watched)
    yield violations
    assert violations == [], "\n".join(violations)


@pytest.fixture
def live_server(app: Flask, tmp_path: Path) -> Iterator[Server]:
    database_file = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    with serve(database_file, log=tmp_path / "server.log",
               media_root=Path(app.config["MEDIA_ROOT"]),
               debug_log=(SENDS_LOGGER, tmp_path / "sends.log")) as server:
        yield server


@pytest.fixture
def fair_cli(app: Flask, live_server: Server) -> Callable[..., str]:
    """Run `flask --app wsgi ...` on the live server's database, as an operator would."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"REDIS_URL", "DATABASE_URL"}}
    environment.update({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                        "MEDIA_ROOT": app.config["MEDIA_ROOT"], "SECRET_KEY": SECRET_KEY})

    def run(*arguments: str) -> str:
        finished = subprocess.run(  # noqa: S603 - the test's own arguments
            [sys.executable, "-m", "flask", "--app", "wsgi", *arguments], cwd=ROOT,
            env=environment, capture_output=True, text=True, timeout=120, check=False,
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
        return finished.stdout

    return run


@pytest.fixture
def context(browser: Browser, live_server: Server) -> Iterator[BrowserContext]:
    """A fresh browser profile at 1920x1080, the size of a projector."""
    context = browser.new_context(base_url=live_server.url,
                                  viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    yield context
    context.close()


@pytest.fixture
def signed_in(app: Flask, live_server: Server) -> Callable[[BrowserContext, User], None]:
    """Give a browser the session cookie of a user, signed like the server signs it."""

    def sign_in(context: BrowserContext, user: User) -> None:
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        assert serializer is not None
        # The session's own token too: the server ends sessions by revoking it (fair.auth).
        cookie = serializer.dumps({SESSION_KEY: user.id,
                                   SESSION_TOKEN_KEY: account_service.issue_token(user)})
        context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                              "url": live_server.url}])

    return sign_in


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
