"""CPU-heavy calls leave the event loop free under gevent (fair.blocking)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

# In a process of its own: gevent's patching must come first and must not leak into the tests.
PROGRAM = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, time, gevent, io
    from argon2 import PasswordHasher
    from PIL import Image
    from fair.blocking import run_blocking

    hasher = PasswordHasher(time_cost=4, memory_cost=65536, parallelism=1)
    picture = io.BytesIO()
    Image.new("RGB", (4000, 4000), "red").save(picture, format="PNG")

    def heavy():
        hasher.hash("a long enough password")
        with Image.open(io.BytesIO(picture.getvalue())) as image:
            image.load()
            image.convert("RGBA").resize((2000, 2000))

    ticks = []
    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.005)

    gevent.spawn(ticker)
    gevent.sleep(0.02)
    blocking = sys.argv[1] == "direct"
    started = time.monotonic()
    heavy() if blocking else run_blocking(heavy)
    took = time.monotonic() - started
    gevent.sleep(0.02)  # the ticker's first tick after the call closes the gap
    during = [tick for tick in ticks if started < tick < started + took]
    longest = max(b - a for a, b in zip(ticks, ticks[1:]))
    print(f"{took:.3f} {len(during)} {longest:.3f}")
""")


def run(mode: str) -> tuple[float, int, float]:
    result = subprocess.run(  # noqa: S603 - our own program, on our interpreter
        [sys.executable, "-c", PROGRAM, mode], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=True)
    took, during, longest = result.stdout.split()
    return float(took), int(during), float(longest)


@pytest.mark.parametrize("mode", ["pool", "direct"])
def test_argon2_and_image_decoding_leave_other_greenlets_running(mode: str) -> None:
    took, during, longest = run(mode)
    assert took > 0.1, "the work must be heavy enough to show a stall"
    if mode == "direct":
        # What the pool prevents: the greenlets stop for the whole call.
        assert during == 0
        assert longest >= took * 0.9
    else:
        assert during >= 5
        assert longest < took / 2


def test_password_checks_and_image_uploads_go_through_the_pool(
    monkeypatch: pytest.MonkeyPatch, app: Flask, make_user: Any,
) -> None:
    from exhibitors import media
    from fair.accounts import service as account_service
    from fair.accounts.models import Role
    from tests.conftest import PASSWORD

    called: list[str] = []

    def recording(fn: Any, *args: Any, **kwargs: Any) -> Any:
        called.append(getattr(fn, "__name__", str(fn)))
        return fn(*args, **kwargs)

    monkeypatch.setattr(account_service, "run_blocking", recording)
    monkeypatch.setattr(media, "run_blocking", recording)
    user = make_user(Role.buyer)
    account_service.authenticate(user.email, PASSWORD)
    assert called == ["hash", "verify"]
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(picture, format="PNG")
    picture.seek(0)
    stored = media.store_upload(picture, media_root=Path(app.config["MEDIA_ROOT"]))
    assert (stored.width, stored.height) == (64, 48)
    assert called[-1] == "_reencode"
