"""localstripe, the stateful fake Stripe server from PyPI, for the integration and browser tests.

One server per test session, started ``--from-scratch`` on a free port; each test empties it
(``DELETE /_config/data``) so that Stripe holds only that test's objects. It serves the REST
API the stripe library speaks (through ``STRIPE_API_BASE``), its own Stripe.js at
``/js.stripe.com/v3/``, and delivers signed webhooks to whatever ``/_config/webhooks/{id}``
registers. Locally a localstripe that cannot start skips the tests; with CI=true it fails them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from tests.serving import free_port

API_KEY = "sk_test_fair_localstripe"
PUBLISHABLE_KEY = "pk_test_fair_localstripe"
WEBHOOK_SECRET = "whsec_fair_localstripe"
#: localstripe sends each event a second after it happens.
DELIVERY_DELAY = 1.0


@dataclass(frozen=True)
class LocalStripe:
    url: str
    log: Path
    #: Where this test's part of the log starts.
    log_start: int = 0

    @property
    def settings(self) -> dict[str, str]:
        """The fair's configuration (environment variables) for this server."""
        return {
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": self.url,
            "STRIPE_JS_URL": f"{self.url}/js.stripe.com/v3/",
        }

    def register_webhook(self, url: str, *, secret: str = WEBHOOK_SECRET,
                         name: str = "fair") -> None:
        """Deliver every event to ``url``, signed with ``secret``; the same name replaces it."""
        answer = requests.post(f"{self.url}/_config/webhooks/{name}",
                               data={"url": url, "secret": secret}, timeout=5)
        answer.raise_for_status()

    def empty(self) -> None:
        requests.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def api(self, method: str, path: str, **data: object) -> dict[str, object]:
        """Call Stripe's REST API directly, as a test (or Stripe.js, with ``key``) would."""
        answer = requests.request(method, f"{self.url}{path}", auth=(API_KEY, ""),
                                  data=data or None, timeout=5)
        answer.raise_for_status()
        body: dict[str, object] = answer.json()
        return body

    def deliveries(self, event_type: str, *, status: str = "successfully delivered") -> int:
        """How often localstripe has sent an event of this type in this test (its log says)."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            text = log.read().decode(errors="replace")
        if status == "successfully delivered":
            return text.count(f'webhook "{event_type}" successfully delivered')
        return text.count(f'webhook "{event_type}" failed with response code {status}')


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    executable = Path(sys.executable).with_name("localstripe")
    with log.open("wb") as output:
        try:
            process = subprocess.Popen(  # noqa: S603 - our own virtualenv's script
                [str(executable), "--port", str(port), "--from-scratch"],
                stdout=output, stderr=subprocess.STDOUT,
            )
        except OSError as error:
            _missing(f"localstripe cannot start: {error}")
        try:
            _wait_until_up(url, process, log)
            yield LocalStripe(url, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def localstripe(localstripe_server: LocalStripe) -> LocalStripe:
    """localstripe, holding nothing from earlier tests."""
    localstripe_server.empty()
    return replace(localstripe_server, log_start=localstripe_server.log.stat().st_size)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _missing(f"localstripe exited:\n{log.read_text(errors='replace')}")
        try:
            if requests.get(f"{url}/v1/customers", auth=(API_KEY, ""), timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    process.kill()
    _missing(f"localstripe did not answer in 30 s:\n{log.read_text(errors='replace')}")
