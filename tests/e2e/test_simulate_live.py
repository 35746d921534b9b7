"""`fair simulate --api`: simulated buyers posting to a running server, as the demo does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask

from fair import demo
from tests.serving import Server

pytestmark = pytest.mark.e2e


def test_simulate_posts_intents_to_a_running_server(
    app: Flask, live_server: Server, fair_cli: Callable[..., str], tmp_path: Path
) -> None:
    built = demo.build_demo_fair(media_root=tmp_path / "media", posters=1, exhibitors=6,
                                 projects=12)
    fair_id = built.fair.id
    output = fair_cli("fair", "simulate", "--api", live_server.url, "--count", "12",
                      "--rate", "0", "--seed", "5")
    assert f"through {live_server.url}" in output
    totals = requests.get(f"{live_server.url}/api/v1/fairs/{fair_id}/totals", timeout=10).json()
    assert totals["deal_count"] == 12
    assert totals["seq"] == 12
    assert f"{totals['amount']} yuan" in output
