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


#: True once each of the big screen's three charts has drawn its bars.
CHARTS_DRAWN = """["provinces", "categories", "halls"].every((key) => {
  const chart = echarts.getInstanceByDom(document.getElementById("chart-" + key));
  const model = chart && chart.getModel();  // none before the chart's first option
  return Boolean(model && model.getSeriesByIndex(0));
})"""


def wait_for_charts(page: Page, *, timeout: float = 10_000) -> None:
    """Until the big screen's charts are drawn: they follow the totals at most once a second."""
    wait_until(page, CHARTS_DRAWN, timeout=timeout)
