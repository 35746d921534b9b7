"""An upload shows how far it has gone, then lands on the project with the file added."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, expect

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import User
from fair.models import Fair

pytestmark = pytest.mark.e2e


def noisy_png(size: int = 420) -> bytes:
    """A PNG that does not compress: about half a megabyte."""
    rng = random.Random(3)
    image = Image.frombytes("RGB", (size, size), bytes(rng.getrandbits(8)
                                                        for _ in range(size * size * 3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_an_upload_shows_its_progress(
    context: BrowserContext, signed_in: Callable[[BrowserContext, User], None], fair: Fair,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], make_project: Callable[..., Project],
    tmp_path: Path, artifacts: Path,
) -> None:
    _, user = make_exhibitor(fair)
    project = make_project(fair, user=user, publish=False)
    signed_in(context, user)
    page = context.new_page()
    # A slow line, as from a phone: about 200 KB/s up.
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 40, "downloadThroughput": 1_000_000,
        "uploadThroughput": 200_000})
    page.goto(f"/portal/projects/{project.id}")
    picture = tmp_path / "poster.png"
    picture.write_bytes(noisy_png())
    page.set_input_files('.upload-form input[type="file"]', str(picture))
    page.locator('.upload-form button[type="submit"]').click()
    bar = page.locator(".upload-progress")
    expect(bar).to_be_visible()
    expect(page.locator(".upload-status")).to_contain_text("正在上传", timeout=5_000)
    page.screenshot(path=str(artifacts / "upload-progress.png"))
    assert 0 <= int(bar.get_attribute("value") or "0") <= 100
    expect(page.locator(".flash-success")).to_contain_text("已上传", timeout=30_000)
    expect(page.locator(".media-item img")).to_have_count(1)
