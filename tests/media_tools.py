"""The media tools some tests need (ffmpeg, nginx with its RTMP module): `make test` installs
them; a missing one skips those tests locally and fails them in CI (CI=true)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: Debian's dynamic RTMP module for nginx (libnginx-mod-rtmp).
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def require(*tools: str) -> dict[str, str]:
    """The paths of `tools` (ffmpeg, ffprobe, nginx); skip or, in CI, fail without them."""
    found = {tool: shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
             for tool in tools}
    missing = [tool for tool, path in found.items() if path is None]
    if "nginx" in tools and not RTMP_MODULE.exists():
        missing.append(str(RTMP_MODULE))
    if missing:
        message = f"missing {', '.join(missing)} (apt-get install nginx libnginx-mod-rtmp ffmpeg)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return {tool: str(path) for tool, path in found.items()}


def pattern_video(path: Path, *, seconds: int, size: str = "160x90", rate: int = 10,
                 container: str = "flv") -> Path:
    """A short generated video (ffmpeg's test pattern) in `container`."""
    ffmpeg = require("ffmpeg")["ffmpeg"]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - fixed arguments
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size={size}:rate={rate}:duration={seconds}", "-c:v", "libx264", "-preset",
         "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p", "-f", container, str(path)],
        check=True, timeout=60,
    )
    return path
