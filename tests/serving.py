"""Real server processes for the integration and browser tests: gunicorn with its gevent worker.

The same command as production (`gunicorn -c gunicorn.conf.py wsgi:app`), configured only
through the environment, on a free local port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
#: The secret of the tests' own apps, so that a cookie signed there is valid on the servers.
SECRET_KEY = "test-secret"
_LISTENING = re.compile(rb"Listening at: (http://\S+)")


#: The logger whose DEBUG lines say when a server sent each `deals` message (`deals_sent`).
SENDS_LOGGER = "livehalls.broadcast"
_DEALS_SENT = re.compile(r"deals fair=(\d+) ids=([\d,]+)")


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    #: Where the server writes the DEBUG lines of `serve`'s `debug_log`, if asked to.
    debug_log: Path | None = None


def deals_sent(server: Server, fair_id: int) -> list[tuple[float, list[int]]]:
    """When the server sent each `deals` message to the fair's rooms, by its own clock (the
    epoch), and the ids of the intents in it: what the server did, however late a busy client
    reads it. The server must run with ``debug_log=(SENDS_LOGGER, path)``."""
    assert server.debug_log is not None, "serve(..., debug_log=(SENDS_LOGGER, path))"
    sent = []
    for line in server.debug_log.read_text().splitlines():
        at, message = line.split(" ", 1)
        match = _DEALS_SENT.fullmatch(message)
        if match and int(match[1]) == fair_id:
            sent.append((float(at), [int(number) for number in match[2].split(",")]))
    return sent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment_for(database_file: Path, *, redis_url: str | None = None,
                    media_root: Path | None = None,
                    environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of a fair process on `database_file`; `environment` adds settings."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "DATABASE_URL", "SOCKETIO_ASYNC_MODE"}}
    env.update({
        "DATABASE_URL": f"sqlite:///{database_file}",
        "SECRET_KEY": SECRET_KEY,
        "MEDIA_ROOT": str(media_root or database_file.parent / "media"),
        # Port 0: gunicorn takes a free port itself and logs it, so two servers never race
        # for one that a probe found free.
        "FAIR_BIND": "127.0.0.1:0",
    })
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env.update(environment or {})
    return env


@contextmanager
def serve(database_file: Path, *, log: Path, redis_url: str | None = None,
          media_root: Path | None = None, environment: Mapping[str, str] | None = None,
          debug_log: tuple[str, Path] | None = None) -> Iterator[Server]:
    """Run the fair on `database_file` until the block ends; `environment` adds settings.

    `debug_log` (a logger's name and a file) writes that logger's DEBUG records, each with its
    time, to the file: what the server itself did, for a test to check.
    """
    env = environment_for(database_file, redis_url=redis_url, media_root=media_root,
                          environment=environment)
    # Several servers run at once here; gunicorn's control socket has one fixed path.
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket"]
    if debug_log is not None:
        command += ["--log-config", str(_debug_log_config(*debug_log, folder=log.parent))]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the test's own command
            [*command, "wsgi:app"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
        try:
            yield Server(_wait_until_up(process, log), log,
                         debug_log=debug_log[1] if debug_log is not None else None)
        finally:
            _stop(process)


@contextmanager
def consume(database_file: Path, *, log: Path, redis_url: str | None = None,
            environment: Mapping[str, str] | None = None, count: int = 1) -> Iterator[list[Path]]:
    """Run `count` consumers of the fair's background tasks, started at once, as the README's
    deployment runs one, until the block ends. Each polls an idle SQLite queue at least every
    half second, and logs to `log` (`count` > 1: `log` with the consumer's number added)."""
    env = environment_for(database_file, redis_url=redis_url, environment=environment)
    logs = [log] if count == 1 else [log.with_name(f"{log.stem}-{number}{log.suffix}")
                                     for number in range(1, count + 1)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for each in logs:
            with each.open("wb") as output:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "huey.bin.huey_consumer", "wsgi.huey", "--workers",
                     "2", "--delay", "0.05", "--max-delay", "0.5"],
                    cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                ))
        deadline = time.monotonic() + 30
        for process, each in zip(processes, logs, strict=True):
            while b"consumer started" not in each.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the consumer did not start:\n"
                                       f"{each.read_text(errors='replace')}")
                time.sleep(0.05)
        yield logs
    finally:
        for process in processes:
            _stop(process)


def _debug_log_config(name: str, path: Path, *, folder: Path) -> Path:
    """A logging configuration (gunicorn's --log-config) for `debug_log` of `serve`."""
    config = folder / f"{path.stem}.ini"
    config.write_text(textwrap.dedent(f"""\
        [loggers]
        keys=root,debugged
        [handlers]
        keys=file
        [formatters]
        keys=timed
        [logger_root]
        level=WARNING
        handlers=
        [logger_debugged]
        level=DEBUG
        handlers=file
        qualname={name}
        propagate=0
        [handler_file]
        class=FileHandler
        args=({str(path)!r}, "a")
        formatter=timed
        [formatter_timed]
        format=%(created).6f %(message)s
    """))
    return config


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], log: Path) -> str:
    """The server's address, once it answers."""
    deadline = time.monotonic() + 30
    url: str | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text(errors='replace')}")
        if url is None:
            listening = _LISTENING.search(log.read_bytes())
            url = listening.group(1).decode() if listening else None
        else:
            try:
                if requests.get(f"{url}/api/v1/fairs", timeout=2).status_code == 200:
                    return url
            except requests.RequestException:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer in 30 s:\n{log.read_text(errors='replace')}")
