"""Intents a second through gunicorn on PostgreSQL, with the running totals kept.

    .venv/bin/python bench/deals.py [--seconds 20] [--writers 16] [--servers 2] [--viewers 1000]

Builds its own PostgreSQL database (127.0.0.1:5432) from the migrations and fills it with the
demo fair at the reference scale, starts its own Redis (the Socket.IO message queue) and
several gunicorn processes as DESIGN's scaled deployment runs them (one gevent worker each),
then lets writer threads post intents over HTTP with bearer tokens and fresh idempotency keys,
with some retries of the same request and some withdrawals mixed in. It prints intents a
second and the POST's latency, then checks that the totals equal the sums over the active
intents, that no intent was lost or doubled, and that PostgreSQL saw no deadlock.

The second phase connects dashboard viewers over Socket.IO (raw websocket clients that answer
pings and count what they receive, so that the viewers' side costs little) and writes again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from servers import (
    ROOT,
    Server,
    cpu_seconds,
    gunicorn,
    own_redis,
    postgres_database,
    server_environment,
)

sys.path.insert(0, str(ROOT))

#: One request in this many sends the previous request again with its key (a client retry).
RETRY_ONE_IN = 20
#: One request in this many withdraws one of the writer's earlier intents.
WITHDRAW_ONE_IN = 40


# --- Where the machine's CPU goes ---------------------------------------------------------------


def _postgres_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def cpu_split(running: list[Server]) -> dict[str, float]:
    """CPU seconds so far of the gunicorn workers, of PostgreSQL (every backend), of this bench."""
    own = os.times()
    return {
        "gunicorn workers": sum(cpu_seconds(server.worker_pid) for server in running),
        "PostgreSQL": sum(cpu_seconds(pid) for pid in _postgres_processes()),
        "this bench": own.user + own.system,
    }


def report_cpu(before: dict[str, float], after: dict[str, float], intents: int,
               seconds: float) -> None:
    shares = ", ".join(
        f"{name} {1000 * (after[name] - before[name]) / max(1, intents):.2f} ms "
        f"({100 * (after[name] - before[name]) / seconds:.0f} % of a core)" for name in before)
    print(f"  CPU per intent signed: {shares}; {os.cpu_count()} cores in all.")


# --- The data: the demo fair, buyers with tokens ------------------------------------------


@dataclass(frozen=True)
class Stage:
    fair_id: int
    projects: list[int]
    halls: list[int]
    buyer_tokens: list[str]
    organiser_token: str


def build_stage(env: dict[str, str], media: Path) -> Stage:
    """Migrate, then build the demo fair, the simulated buyers and their tokens."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update(env)
    from deals import simulate
    from fair import create_app, demo
    from fair.accounts import service as account_service

    app = create_app()
    with app.app_context():
        fair = demo.build_demo_fair(media_root=media, posters=1).fair
        buyers = simulate.simulated_buyers()
        organiser = account_service.find_user(demo.ORGANISER_EMAIL)
        assert organiser is not None
        return Stage(
            fair_id=fair.id,
            projects=simulate.published_projects(fair),
            halls=simulate.halls_of(fair),
            buyer_tokens=[account_service.issue_token(buyer) for buyer in buyers],
            organiser_token=account_service.issue_token(organiser),
        )


# --- Writers -------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    created: set[int] = field(default_factory=set)
    replays: int = 0
    replay_mismatches: int = 0
    withdrawals: int = 0
    failures: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int) -> None:
        with self.lock:
            self.failures[status] = self.failures.get(status, 0) + 1


@dataclass(frozen=True)
class Signed:
    """A request that made an intent, kept to be sent again as a client's retry would."""

    path: str
    body: bytes
    headers: dict[str, str]
    intent_id: int


def writer(number: int, port: int, stage: Stage, deadline: float, tally: Tally) -> None:
    """Sign as one buyer (so that it may withdraw what it signed), retry, withdraw."""
    rng = random.Random(number)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    token = stage.buyer_tokens[number % len(stage.buyer_tokens)]
    mine: list[int] = []
    previous: Signed | None = None
    count = 0

    def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}

    while time.monotonic() < deadline:
        count += 1
        if previous is not None and count % RETRY_ONE_IN == 1:
            status, deal = post(previous.path, previous.body, previous.headers)
            with tally.lock:
                tally.replays += 1
                tally.replay_mismatches += status != 201 or deal.get("id") != previous.intent_id
            continue
        if mine and count % WITHDRAW_ONE_IN == 0:
            status, _ = post(f"/api/v1/deals/{mine.pop(rng.randrange(len(mine)))}/withdraw",
                             b"", {"Authorization": f"Bearer {token}"})
            if status == 200:
                with tally.lock:
                    tally.withdrawals += 1
            else:
                tally.fail(status)
            continue
        fields: dict[str, object] = {
            "amount": f"{rng.randint(1_000, 200_000)}.{rng.randint(0, 99):02d}"}
        if rng.randrange(3):
            fields["hall_id"] = rng.choice(stage.halls)
        body = json.dumps(fields).encode()
        path = f"/api/v1/projects/{rng.choice(stage.projects)}/deals"
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()),
                   "Content-Type": "application/json"}
        started = time.perf_counter()
        status, deal = post(path, body, headers)
        elapsed = time.perf_counter() - started
        if status != 201:
            tally.fail(status)
            continue
        intent_id = int(str(deal["id"]))
        mine.append(intent_id)
        previous = Signed(path, body, headers, intent_id)
        with tally.lock:
            tally.latencies.append(elapsed)
            if intent_id in tally.created:
                tally.replay_mismatches += 1
            tally.created.add(intent_id)


def write(stage: Stage, ports: list[int], *, writers: int, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=writer, args=(n, ports[n % len(ports)], stage, deadline,
                                                     tally)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def report(title: str, tally: Tally, seconds: float) -> None:
    latencies = sorted(tally.latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0
    print(f"{title}: {len(latencies) / seconds:.0f} intents/s "
          f"({len(latencies)} in {seconds:.0f} s), POST p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"{tally.replays} retries ({tally.replay_mismatches} answered otherwise), "
          f"{tally.withdrawals} withdrawals, failures {tally.failures or 'none'}")


# --- Checks ----------------------------------------------------------------------------------

DIMENSIONS = {
    "buyer_province": "buyer_province",
    "exhibitor_province": "exhibitor_province",
    "category": "category",
    "hall": "CAST(hall_id AS TEXT)",
    "exhibitor": "CAST(exhibitor_id AS TEXT)",
}


def check(database_url: str, fair_id: int, tally: Tally) -> list[str]:
    """The totals against the sums over active intents; lost or doubled intents; deadlocks."""
    problems = []
    with psycopg.connect(database_url) as connection:
        totals = connection.execute(
            "SELECT amount_fen, deal_count, project_count, buyer_count FROM fair_totals "
            "WHERE fair_id = %s", (fair_id,)).fetchone()
        sums = connection.execute(
            "SELECT COALESCE(SUM(amount_fen), 0), COUNT(*), COUNT(DISTINCT project_id), "
            "COUNT(DISTINCT buyer_id) FROM intents WHERE fair_id = %s AND status = 'active'",
            (fair_id,)).fetchone()
        if totals != sums:
            problems.append(f"totals {totals} != sums over active intents {sums}")
        for dimension, column in DIMENSIONS.items():
            kept = dict(connection.execute(
                "SELECT key, (amount_fen, deal_count)::text FROM fair_totals_breakdown "
                "WHERE fair_id = %s AND dimension = %s AND deal_count > 0",
                (fair_id, dimension)).fetchall())
            summed = dict(connection.execute(
                f"SELECT {column}, (SUM(amount_fen), COUNT(*))::text FROM intents "  # noqa: S608
                f"WHERE fair_id = %s AND status = 'active' AND {column} IS NOT NULL "
                f"GROUP BY {column}", (fair_id,)).fetchall())
            if kept != summed:
                problems.append(f"by_{dimension} differs from the sums over active intents")
        intents, keys = connection.execute(
            "SELECT (SELECT COUNT(*) FROM intents), (SELECT COUNT(*) FROM idempotency_keys)"
        ).fetchone()
        if intents != len(tally.created) or keys != intents:
            problems.append(f"{intents} intents, {keys} keys, {len(tally.created)} answered 201")
        deadlocks = connection.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        if deadlocks and deadlocks[0]:
            problems.append(f"PostgreSQL counted {deadlocks[0]} deadlocks")
    return problems


# --- Viewers: raw Socket.IO over websocket ---------------------------------------------------


@dataclass
class Viewers:
    joined: int = 0
    messages: int = 0
    received_bytes: int = 0
    failed: int = 0


def _frame(text: str) -> bytes:
    """A masked websocket text frame, as a client must send it."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    header = bytes([0x81, 0x80 | length]) if length < 126 else (
        bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big"))
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


class Viewer(asyncio.Protocol):
    """One dashboard: Engine.IO 4 over a websocket, /live with a token, join_dashboard.

    It reads frames straight from the socket's buffer and looks only at their first bytes,
    so that a thousand of them cost the machine little next to the servers they measure.
    """

    def __init__(self, port: int, token: str, fair_id: int, viewers: Viewers) -> None:
        self.port, self.token, self.fair_id, self.viewers = port, token, fair_id, viewers
        self.buffer = bytearray()
        self.upgraded = False
        self.joined = False
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{self.port}"
            f"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[:end + 4]
            self.upgraded = True
        start = 0
        while len(self.buffer) - start >= 2:
            length, offset = self.buffer[start + 1] & 0x7F, start + 2
            if length == 126:
                if len(self.buffer) - start < 4:
                    break
                length, offset = int.from_bytes(self.buffer[start + 2:start + 4], "big"), start + 4
            elif length == 127:
                if len(self.buffer) - start < 10:
                    break
                length = int.from_bytes(self.buffer[start + 2:start + 10], "big")
                offset = start + 10
            if len(self.buffer) < offset + length:
                break
            self.viewers.received_bytes += length
            self.packet(bytes(self.buffer[offset:offset + min(length, 40)]))
            start = offset + length
        del self.buffer[:start]

    def packet(self, head: bytes) -> None:
        assert self.transport is not None
        if head == b"2":
            self.transport.write(_frame("3"))  # pong
        elif head.startswith(b"0{"):  # Engine.IO open: connect to /live with the token
            self.transport.write(_frame("40/live," + json.dumps({"token": self.token})))
        elif head.startswith(b"40/live"):
            self.transport.write(_frame(
                "42/live,1" + json.dumps(["join_dashboard", {"fair_id": self.fair_id}])))
        elif head.startswith(b"43/live,1"):
            if not self.joined and b'"ok":true' in head.replace(b" ", b""):
                self.joined = True
                self.viewers.joined += 1
            elif not self.joined:
                self.transport.close()
        elif head.startswith(b"42/live"):
            self.viewers.messages += 1
        elif head.startswith(b"44/live"):  # connect_error: the token was refused
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if not self.joined:
            self.viewers.failed += 1
        self.closed.set_result(None)


def watch(ports: list[int], stage: Stage, count: int, stop: threading.Event,
          ready: threading.Event, viewers: Viewers) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        connections: list[Viewer] = []
        for number in range(count):
            port = ports[number % len(ports)]
            try:
                _, protocol = await loop.create_connection(
                    lambda port=port: Viewer(port, stage.organiser_token, stage.fair_id,
                                             viewers), "127.0.0.1", port)
                connections.append(protocol)
            except OSError:
                viewers.failed += 1
            if number % 50 == 49:
                await asyncio.sleep(0.05)  # do not stampede the servers' accept queues
        deadline = time.monotonic() + 120
        while (viewers.joined + viewers.failed < count and not stop.is_set()
               and time.monotonic() < deadline):
            await asyncio.sleep(0.1)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
        await asyncio.gather(*(connection.closed for connection in connections))

    asyncio.run(main())


# --- Main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--servers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--viewers", type=int, default=1000, help="0 skips the second phase")
    arguments = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fair-bench-")))
        database_url = stack.enter_context(postgres_database("fair_bench"))
        redis_url = stack.enter_context(own_redis(folder)).url
        env = server_environment(database_url, redis_url, folder / "media")
        started = time.monotonic()
        stage = build_stage(env, folder / "media")
        print(f"Demo fair {stage.fair_id}: {len(stage.projects)} projects, "
              f"{len(stage.halls)} halls, {len(stage.buyer_tokens)} buyers "
              f"(built in {time.monotonic() - started:.0f} s).")
        running = [stack.enter_context(gunicorn(env, folder / f"gunicorn-{n}.log"))
                   for n in range(arguments.servers)]
        ports = [server.port for server in running]
        print(f"{arguments.servers} gunicorn processes (one gevent worker each), "
              f"{arguments.writers} writers over HTTP with bearer tokens.")

        cpu_before = cpu_split(running)
        tally = write(stage, ports, writers=arguments.writers, seconds=arguments.seconds)
        report("Writers alone", tally, arguments.seconds)
        report_cpu(cpu_before, cpu_split(running), len(tally.latencies), arguments.seconds)
        problems = check(database_url, stage.fair_id, tally)

        if arguments.viewers:
            stop, ready, viewers = threading.Event(), threading.Event(), Viewers()
            watcher = threading.Thread(target=watch, args=(ports, stage, arguments.viewers,
                                                           stop, ready, viewers))
            watcher.start()
            ready.wait()
            print(f"{viewers.joined} dashboard viewers joined ({viewers.failed} failed).")
            before = viewers.messages
            cpu_before = cpu_split(running)
            loaded = write(stage, ports, writers=arguments.writers, seconds=arguments.seconds)
            report(f"With {viewers.joined} viewers", loaded, arguments.seconds)
            report_cpu(cpu_before, cpu_split(running), len(loaded.latencies), arguments.seconds)
            delivered = viewers.messages - before
            print(f"The viewers received {delivered} messages "
                  f"({delivered / max(1, viewers.joined) / arguments.seconds:.1f} a second "
                  f"each), {viewers.received_bytes / 1e6:.0f} MB in all.")
            stop.set()
            watcher.join()
            tally.created |= loaded.created
            problems += check(database_url, stage.fair_id, tally)

        for number in range(arguments.servers):
            log = (folder / f"gunicorn-{number}.log").read_text(errors="replace")
            if "deadlock" in log.lower() or "Traceback" in log:
                problems.append(f"gunicorn {number} logged an error:\n{log[-2000:]}")
        print("Checks:", "; ".join(problems) if problems else
              "totals equal the sums over active intents, no intent lost or doubled, "
              "no deadlock.")
        if problems:
            sys.exit(1)


if __name__ == "__main__":
    main()
