"""What hostile traffic does to one gunicorn worker (issue 15), printed as figures.

    .venv/bin/python bench/hostile.py [--root CHECKOUT] [--seconds 10] [--loops 6]

Starts `gunicorn -c gunicorn.conf.py wsgi:app` (one gevent worker) from CHECKOUT (this one by
default; another checkout gives the figures before a change) on a fresh SQLite database, then:

1. sends one anonymous 100 MB JSON body to POST /api/v1/auth/token and prints the worker's
   resident memory before and after, and how long the worker took to answer;
2. measures GET /api/v1/fairs/{id}/totals (median and max) alone, then while `--loops` threads
   hammer POST /api/v1/auth/token with wrong passwords (Argon2 checks): once with the sign-in
   rate limits as configured, once with them lifted, so that what the thread pool does shows
   apart from what the limits do.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from servers import ROOT, free_port, rss_kb, worker_of

EMAIL = "organiser@bench.example"
PASSWORD = "bench-organiser-password"  # noqa: S105 - a throwaway bench account


def environment(database: Path, media: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "DATABASE_URL", "SOCKETIO_ASYNC_MODE", "FAIR_ACCESS_LOG"}}
    env.update({"DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "bench-secret",
                "MEDIA_ROOT": str(media), **extra})
    return env


def flask(root: Path, env: dict[str, str], *arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *arguments], cwd=root,
                   env=env, check=True, capture_output=True, timeout=300)


@contextmanager
def gunicorn(root: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    with log.open("wb") as output:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket",
             "wsgi:app"], cwd=root, env={**env, "FAIR_BIND": f"127.0.0.1:{port}"},
            stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/api/v1/fairs", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or master.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace"))
            time.sleep(0.2)
        yield url, worker_of(master.pid)
    finally:
        master.terminate()
        master.wait(timeout=30)


def big_body(url: str, megabytes: int) -> tuple[float, int | str]:
    """POST a JSON body of `megabytes` MB; the seconds until the answer, and its status."""
    host, port = url.removeprefix("http://").split(":")
    size = megabytes * 1024 * 1024
    head, tail = b'{"email": "', b'", "password": "x"}'
    filler = size - len(head) - len(tail)
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    started = time.monotonic()
    connection.putrequest("POST", "/api/v1/auth/token")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    status: int | str
    try:
        connection.send(head)
        chunk = b"a" * (1024 * 1024)
        sent = 0
        while sent < filler:
            piece = chunk[: min(len(chunk), filler - sent)]
            connection.send(piece)
            sent += len(piece)
        connection.send(tail)
        status = connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        # The server answered (413) and closed without reading the rest: what it should do.
        try:
            status = connection.getresponse().status
        except (http.client.HTTPException, OSError):
            status = "closed early"
    took = time.monotonic() - started
    connection.close()
    return took, status


def totals_latency(url: str, fair_id: int, seconds: float) -> list[float]:
    timings = []
    deadline = time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:
            started = time.monotonic()
            session.get(f"{url}/api/v1/fairs/{fair_id}/totals", timeout=30).raise_for_status()
            timings.append(time.monotonic() - started)
            time.sleep(0.02)
    return timings


def hammer(url: str, stop: threading.Event, answers: list[int]) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            response = session.post(f"{url}/api/v1/auth/token",
                                    json={"email": EMAIL, "password": "wrong password!"},
                                    timeout=30)
            answers.append(response.status_code)


def figures(timings: list[float]) -> str:
    return (f"p50 {statistics.median(timings) * 1000:.1f} ms, "
            f"max {max(timings) * 1000:.1f} ms, n={len(timings)}")


def run(root: Path, seconds: float, loops: int, folder: Path, *, lifted: bool) -> None:
    database, media = folder / "fair.sqlite", folder / "media"
    extra = {"SIGN_IN_ACCOUNT_LIMIT": "100000 per minute",
             "SIGN_IN_ADDRESS_LIMIT": "100000 per minute"} if lifted else {}
    env = environment(database, media, **extra)
    if not database.exists():
        flask(root, env, "db", "upgrade")
        flask(root, env, "fair", "create-organiser", EMAIL, "--password", PASSWORD)
    label = "limits lifted" if lifted else "limits as configured"
    with gunicorn(root, env, folder / f"server-{lifted}.log") as (url, worker):
        token = requests.post(f"{url}/api/v1/auth/token",
                              json={"email": EMAIL, "password": PASSWORD}, timeout=30)
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        fair = requests.post(f"{url}/api/v1/fairs", headers=headers, timeout=30, json={
            "name": "压力测试", "starts_at": "2026-12-01T09:00:00+08:00",
            "ends_at": "2026-12-03T09:00:00+08:00"})
        fair.raise_for_status()
        fair_id = fair.json()["id"]
        if not lifted:
            before = rss_kb(worker)
            took, status = big_body(url, 100)
            time.sleep(2)
            after = rss_kb(worker)
            print(json.dumps({"100MB body": {"status": status, "seconds": round(took, 2),
                                             "worker_rss_mb_before": before // 1024,
                                             "worker_rss_mb_after": after // 1024}}))
        alone = totals_latency(url, fair_id, seconds)
        print(f"GET /totals alone ({label}): {figures(alone)}")
        stop, answers = threading.Event(), []
        threads = [threading.Thread(target=hammer, args=(url, stop, answers))
                   for _ in range(loops)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        loaded = totals_latency(url, fair_id, seconds)
        stop.set()
        for thread in threads:
            thread.join()
        counts = {str(code): answers.count(code) for code in sorted(set(answers))}
        print(f"GET /totals with {loops} token loops ({label}): {figures(loaded)}; "
              f"token answers {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--loops", type=int, default=6)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fair-hostile-") as folder:
        print(f"checkout: {options.root}")
        run(options.root, options.seconds, options.loops, Path(folder), lifted=False)
        run(options.root, options.seconds, options.loops, Path(folder), lifted=True)


if __name__ == "__main__":
    main()
