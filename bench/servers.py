"""The benchmarks' own services: a fresh PostgreSQL database, a Redis of their own, gunicorn
processes as DESIGN's scaled deployment runs them, and what /proc says of their CPU and memory.

Imported by the benchmark scripts beside it (`python bench/deals.py` puts this folder first on
the path).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get("FAIR_BENCH_POSTGRES",
                                    "postgresql://postgres@127.0.0.1:5432/test")
SECRET_KEY = "bench-secret"  # noqa: S105 - the benchmarks' throwaway servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A brand-new PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class RedisServer:
    """A Redis of the bench's own, so that its messages reach no other servers; it can be
    stopped and started again (empty), as a Redis restart does."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@contextmanager
def own_redis(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def server_environment(database_url: str, redis_url: str | None, media: Path) -> dict[str, str]:
    """The environment of the bench's servers (and of its own app, which builds the data)."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "DATABASE_URL", "SOCKETIO_ASYNC_MODE", "FAIR_ACCESS_LOG"}}
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "MEDIA_ROOT": str(media)})
    # The bench signs hundreds of intents a second with a few buyers' tokens.
    env.setdefault("SIGNING_ACCOUNT_LIMIT", "1000000 per minute")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@dataclass
class Server:
    url: str
    port: int
    master: subprocess.Popen[bytes]
    log: Path
    #: The gunicorn master's one worker.
    worker_pid: int = 0
    #: The worker's resident memory before the load, and its peak, for whoever watches it.
    baseline_kb: int = 0
    peak_kb: int = 0


@contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[Server]:
    """`gunicorn -c gunicorn.conf.py wsgi:app` (one gevent worker) on a free port, once it
    answers."""
    port = free_port()
    with log.open("wb") as output:
        master = subprocess.Popen(
            # Several servers run at once here; gunicorn's control socket has one fixed path.
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket",
             "wsgi:app"],
            cwd=ROOT, env={**env, "FAIR_BIND": f"127.0.0.1:{port}"}, stdout=output,
            stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", port, master, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if master.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace"))
            try:
                if requests.get(f"{server.url}/api/v1/fairs", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.1)
        server.worker_pid = worker_of(master.pid)
        server.baseline_kb = server.peak_kb = rss_kb(server.worker_pid)
        yield server
    finally:
        master.terminate()
        try:
            master.wait(20)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


def worker_of(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return int(children[0]) if children else 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
