"""Waiting for a condition in a page that runs under the fair's Content-Security-Policy.

Playwright's ``wait_for_function`` builds its predicate with ``new Function`` inside the page,
which the policy (no 'unsafe-eval') refuses; ``evaluate`` goes through the DevTools protocol,
which the policy does not govern, so the condition is polled from here.
"""

from __future__ import annotations

import time

from playwright.sync_api import Page

POLL_MS = 100


def wait_until(page: Page, expression: str, *, timeout: float) -> None:
    """Poll the JavaScript `expression` until it is truthy; `timeout` in milliseconds."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:.0f} ms: {expression}")
        page.wait_for_timeout(POLL_MS)
