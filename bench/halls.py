"""Viewers in one live hall while buyers sign intents through the real API.

    .venv/bin/python bench/halls.py                      # every scenario of the issue
    .venv/bin/python bench/halls.py --viewers 1000 --rate 5 [--processes 2] [--redis-restart]

Builds a fresh database from the migrations (SQLite for one process, PostgreSQL at
127.0.0.1:5432 for several, or --database-url, an empty PostgreSQL database), a fair with a hall,
projects, and buyers with tokens. Starts gunicorn processes as DESIGN's scaled deployment runs
them (one gevent worker each; with a Redis of the bench's own when there are several, so that no
other server hears it), then N viewers in one hall (bench/viewers.js: websockets speaking the
Socket.IO protocol from Node) and posts intents over HTTP at R a second.

It prints the delivery ratio (every viewer should get every intent), deal-to-screen p50 and
p99 (from the intent's created_at, set by the server that recorded it, to its arrival at each
viewer), messages per viewer, how long the joins took, each worker's peak RSS and the memory a
viewer costs (peak RSS minus the RSS before the viewers came, divided by its viewers).

--redis-restart stops the bench's Redis a third of the way in and starts it again (empty)
three seconds later; it prints when every server was subscribed again (PUBSUB NUMSUB and each
server's /api/v1/health) and checks that every viewer ends on the latest totals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from servers import (
    ROOT,
    SECRET_KEY,
    RedisServer,
    Server,
    cpu_seconds,
    gunicorn,
    own_redis,
    postgres_database,
    rss_kb,
    server_environment,
)

sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"  # noqa: S105 - accounts in a throwaway database
BUYERS = 20
PROJECTS = 10
TWO_PROCESSES = "2 processes x 500 viewers @5/s"
#: The scenarios of the issue: (name, viewers, intents a second, processes, p99 target in ms).
SCENARIOS = [
    ("100 viewers @20/s", 100, 20, 1, 100),
    ("1,000 viewers @5/s", 1000, 5, 1, 400),
    ("1,000 viewers burst @50/s", 1000, 50, 1, 1000),
    ("2,000 viewers @50/s", 2000, 50, 1, 1500),
    ("5,000 viewers, one process @5/s", 5000, 5, 1, 2000),
    (TWO_PROCESSES, 1000, 5, 2, None),
    ("Redis restart, 2 x 500 viewers @5/s", 1000, 5, 2, None),
]


# --- The fair's data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    database_url: str
    fair_id: int
    hall_id: int
    projects: list[int]
    tokens: list[str]


def build(database_url: str, folder: Path) -> Fixture:
    """Migrate the database and make a fair, a hall, projects and buyers with tokens."""
    from flask_migrate import upgrade

    from deals import service as deal_service
    from exhibitors import service as exhibitor_service
    from fair import create_app
    from fair import service as fair_service
    from fair.accounts import service as account_service
    from fair.accounts.models import Role
    from fair.extensions import db
    from fair.models import FairStatus
    from livehalls import service as hall_service

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None,
                      "SECRET_KEY": SECRET_KEY, "MEDIA_ROOT": str(folder / "media")})
    with app.app_context():
        upgrade()
        organiser = account_service.create_organiser(email="organiser@bench.example",
                                                     password=PASSWORD)
        start = dt.datetime.now(dt.UTC)
        fair = fair_service.create_fair(organiser=organiser, name="压测采购大会",
                                        starts_at=start, ends_at=start + dt.timedelta(days=3))
        fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
        hall = hall_service.create_hall(fair, organiser=organiser, name="一号直播厅")
        exhibitor_user = account_service.register_user(
            email="exhibitor@bench.example", password=PASSWORD, name="参展商",
            role=Role.exhibitor, organisation_name="成都文化馆", province="CN-SC")
        exhibitor = exhibitor_service.apply_to_fair(fair, user=exhibitor_user)
        exhibitor_service.approve_exhibitor(exhibitor, organiser=organiser)
        projects = []
        for number in range(PROJECTS):
            project = exhibitor_service.create_project(
                fair, user=exhibitor_user, title=f"川剧专场 {number}", category="performance",
                price_fen=12_000_000, summary="", description="", tags=())
            exhibitor_service.publish_project(project, user=exhibitor_user)
            projects.append(project.id)
        tokens = []
        for number in range(BUYERS):
            buyer = account_service.register_user(
                email=f"buyer{number}@bench.example", password=PASSWORD,
                name=f"采购方 {number}", role=Role.buyer, organisation_name=f"文化馆 {number}",
                province=["CN-SC", "CN-CQ", "CN-BJ", "CN-XZ"][number % 4],
                phone="028-8888 0000")
            # Verified, so that their intents count and reach the viewers.
            deal_service.verify_organisation(buyer.organisation_id, organiser=organiser)
            tokens.append(account_service.issue_token(buyer))
        fixture = Fixture(database_url, fair.id, hall.id, projects, tokens)
        db.engine.dispose()
    return fixture


# --- Services: Redis of the bench's own, gunicorn processes ------------------------------------


class MemoryWatch(threading.Thread):
    """Keep each worker's peak RSS, four times a second."""

    def __init__(self, servers: list[Server]) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for server in self.servers:
                with suppress(OSError):
                    server.peak_kb = max(server.peak_kb, rss_kb(server.worker_pid))
            self.done.wait(0.25)


# --- Load: viewers in Node, intents over HTTP --------------------------------------------------


class Viewers:
    """bench/viewers.js, spoken to one JSON line at a time."""

    def __init__(self, servers: list[Server], hall_id: int, count: int) -> None:
        self.process = subprocess.Popen(
            ["node", str(ROOT / "bench" / "viewers.js"), "--urls",
             ",".join(server.url for server in servers), "--hall", str(hall_id),
             "--viewers", str(count)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def wait(self, event: str, timeout: float) -> dict[str, Any]:
        while True:
            message = self.lines.get(timeout=timeout)
            if message["event"] == event:
                return message

    def report(self, deals: list[int], final_seq: int, wait_seconds: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": "report", "deals": deals,
                                             "final_seq": final_seq,
                                             "wait_seconds": wait_seconds}) + "\n")
        self.process.stdin.flush()
        return self.wait("report", timeout=wait_seconds + 120)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@dataclass
class Signing:
    """Intents posted at a steady rate by a few threads, round robin over the servers."""

    fixture: Fixture
    servers: list[Server]
    rate: float
    seconds: float
    ids: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)

    def run(self) -> None:
        total = int(self.rate * self.seconds)
        start = time.monotonic() + 0.2
        lock = threading.Lock()
        counter = iter(range(total))

        def writer() -> None:
            session = requests.Session()
            while True:
                with lock:
                    number = next(counter, None)
                if number is None:
                    return
                delay = start + number / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                server = self.servers[number % len(self.servers)]
                project = self.fixture.projects[number % len(self.fixture.projects)]
                token = self.fixture.tokens[number % len(self.fixture.tokens)]
                began = time.monotonic()
                key = uuid.uuid4().hex
                response = None
                # A keep-alive connection the server has just closed fails at once; the same
                # request again, with the same Idempotency-Key, records one intent at most.
                for attempt in range(3):
                    try:
                        response = session.post(
                            f"{server.url}/api/v1/projects/{project}/deals",
                            json={"amount": f"{1000 + number}.00",
                                  "hall_id": self.fixture.hall_id},
                            headers={"Authorization": f"Bearer {token}",
                                     "Idempotency-Key": key}, timeout=30)
                        break
                    except requests.ConnectionError as error:
                        if attempt == 2:
                            with lock:
                                self.failures.append(str(error))
                if response is None:
                    continue
                with lock:
                    self.post_ms.append(1000 * (time.monotonic() - began))
                    if response.status_code == 201:
                        self.ids.append(response.json()["id"])
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")

        threads = [threading.Thread(target=writer) for _ in range(min(16, max(2, total)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def queue_health(servers: list[Server], redis_server: RedisServer) -> tuple[int, list[Any]]:
    from livehalls.broadcast import queue_channel

    channel = queue_channel(os.environ.get("REDIS_PREFIX") or "fair")
    numsub = dict(redis.Redis(port=redis_server.port).pubsub_numsub(channel))
    subscribers = int(numsub.get(channel.encode(), 0))
    states = []
    for server in servers:
        try:
            states.append(requests.get(f"{server.url}/api/v1/health", timeout=5)
                          .json()["queue"]["subscribed"])
        except requests.RequestException as error:
            states.append(f"error {error}")
    return subscribers, states


def restart_redis(redis_server: RedisServer, servers: list[Server], *, after: float,
                  log: list[str]) -> None:
    time.sleep(after)
    subscribers, states = queue_health(servers, redis_server)
    log.append(f"before: PUBSUB NUMSUB {subscribers}, subscribed {states}")
    redis_server.stop()
    stopped = time.monotonic()
    log.append("Redis stopped")
    time.sleep(3)
    redis_server.start()
    log.append(f"Redis started again after {time.monotonic() - stopped:.1f} s, empty")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        subscribers, states = queue_health(servers, redis_server)
        if subscribers >= len(servers) and all(state is True for state in states):
            log.append(f"every server subscribed again {time.monotonic() - stopped:.1f} s after "
                       f"the stop: PUBSUB NUMSUB {subscribers}, subscribed {states}")
            return
        time.sleep(0.5)
    log.append(f"NOT subscribed again after 120 s: PUBSUB NUMSUB {subscribers}, {states}")


# --- One scenario ------------------------------------------------------------------------------


def run(*, viewers: int, rate: float, processes: int, seconds: float, redis_restart: bool,
        database_url: str | None, queue: bool = False) -> dict[str, Any]:
    """One scenario; `queue` runs even one process as the scaled deployment (PostgreSQL, Redis)."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-halls-")))
        if database_url is None and (processes > 1 or queue):
            # DESIGN's scaled deployment; SQLite's writer lock would stall one process's
            # event loop whenever the other writes.
            database_url = stack.enter_context(postgres_database("fair_bench_halls"))
        url = database_url or f"sqlite:///{folder / 'fair.sqlite'}"
        fixture = build(url, folder)
        redis_server = None
        if processes > 1 or redis_restart or queue:
            redis_server = stack.enter_context(own_redis(folder))
        env = server_environment(fixture.database_url,
                                 redis_server.url if redis_server else None, folder / "media")
        servers = [stack.enter_context(gunicorn(env, folder / f"server{number}.log"))
                   for number in range(processes)]
        watch = MemoryWatch(servers)
        watch.start()
        stack.callback(watch.done.set)

        join_cpu_before = [cpu_seconds(server.worker_pid) for server in servers]
        crowd = Viewers(servers, fixture.hall_id, viewers)
        stack.callback(crowd.close)
        joined = crowd.wait("joined", timeout=300)
        # Load-independent, unlike the join time: what the joins cost the workers.
        join_cpu_ms = round(1000 * sum(cpu_seconds(server.worker_pid) - before for server, before
                                       in zip(servers, join_cpu_before, strict=True))
                            / max(viewers, 1), 2)

        restart_log: list[str] = []
        restarter = None
        if redis_restart:
            assert redis_server is not None
            restarter = threading.Thread(target=restart_redis, args=(redis_server, servers),
                                         kwargs={"after": seconds / 3, "log": restart_log})
            restarter.start()
        signing = Signing(fixture, servers, rate, seconds)
        cpu_before = [cpu_seconds(server.worker_pid) for server in servers]
        viewers_cpu_before = cpu_seconds(crowd.process.pid)
        began = time.monotonic()
        signing.run()
        posting_seconds = time.monotonic() - began
        cpu_share = [round(100 * (cpu_seconds(server.worker_pid) - before) / posting_seconds)
                     for server, before in zip(servers, cpu_before, strict=True)]
        viewers_cpu = round(100 * (cpu_seconds(crowd.process.pid) - viewers_cpu_before)
                            / posting_seconds)
        if restarter is not None:
            restarter.join()
        totals = requests.get(f"{servers[0].url}/api/v1/fairs/{fixture.fair_id}/totals",
                              timeout=10).json()
        report = crowd.report(signing.ids, totals["seq"], wait_seconds=60 if redis_restart else 5)
        watch.done.set()
        watch.join()
    return {
        "viewers": viewers, "rate": rate, "processes": processes,
        "join_seconds": joined["seconds"], "join_failed": joined["failed"],
        "join_cpu_ms": join_cpu_ms,
        "intents": len(signing.ids), "post_failures": len(signing.failures),
        "failure_sample": signing.failures[:3],
        "posting_seconds": round(posting_seconds, 1),
        "post_p50_ms": percentile(signing.post_ms, 0.5),
        "report": report,
        "cpu_percent": cpu_share,
        "viewers_cpu_percent": viewers_cpu,
        "load_average": round(os.getloadavg()[0], 1),
        "rss_mb": [round(server.peak_kb / 1024, 1) for server in servers],
        "baseline_mb": [round(server.baseline_kb / 1024, 1) for server in servers],
        "kb_per_viewer": [round((server.peak_kb - server.baseline_kb) / (viewers / processes), 1)
                          for server in servers],
        "redis_restart": restart_log,
    }


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def show(name: str, result: dict[str, Any], target_ms: float | None) -> None:
    report = result["report"]
    verdict = ""
    if target_ms is not None and report["p99_ms"] is not None:
        met = "met" if report["p99_ms"] < target_ms else "MISSED"
        verdict = f"  [target p99 < {target_ms} ms: {met}]"
    print(f"\n== {name}{verdict}")
    print(f"  viewers {result['viewers']} on {result['processes']} process(es), joined "
          f"{report['joined']} in {result['join_seconds']:.1f} s ({result['join_failed']} failed), "
          f"worker CPU {result['join_cpu_ms']} ms per join")
    print(f"  intents {result['intents']} at {result['rate']}/s over "
          f"{result['posting_seconds']} s, {result['post_failures']} refused or failed "
          f"{result['failure_sample'] or ''}; POST p50 {result['post_p50_ms']} ms")
    print(f"  delivery ratio {report['delivery_ratio']:.4f}; deal-to-screen p50 "
          f"{report['p50_ms']} ms, p99 {report['p99_ms']} ms, max {report['max_ms']} ms")
    print(f"  messages per viewer {report['messages_per_viewer']:.1f} "
          f"({report['messages_per_viewer'] / max(report['seconds'], 1):.1f}/s; most "
          f"{report['max_messages_per_viewer']}); on the latest totals "
          f"{report['on_latest_totals']}/{report['viewers']}; reconnects {report['reconnects']}")
    print(f"  worker RSS peak {result['rss_mb']} MB (before viewers {result['baseline_mb']} MB);"
          f" memory per viewer {result['kb_per_viewer']} KB")
    print(f"  CPU while signing: workers {result['cpu_percent']} %, the viewers' Node process "
          f"{result['viewers_cpu_percent']} % of a core; load average {result['load_average']}"
          " (two cores)")
    for line in result["redis_restart"]:
        print(f"  redis: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int)
    parser.add_argument("--rate", type=float, default=5)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--redis-restart", action="store_true")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default SQLite)")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    arguments = parser.parse_args()
    if arguments.viewers:
        result = run(viewers=arguments.viewers, rate=arguments.rate,
                     processes=arguments.processes, seconds=arguments.seconds,
                     redis_restart=arguments.redis_restart, database_url=arguments.database_url)
        show(f"{arguments.viewers} viewers @{arguments.rate}/s", result, None)
        return
    one_process_p99: float | None = None
    for name, viewers, rate, processes, target in SCENARIOS:
        if arguments.only and arguments.only not in name:
            continue
        if name == TWO_PROCESSES and one_process_p99 is None:
            # The issue compares two processes on one Redis with one process alone: the same
            # 1,000 viewers at the same rate, on PostgreSQL and Redis as well.
            baseline = run(viewers=viewers, rate=rate, processes=1, seconds=arguments.seconds,
                           redis_restart=False, database_url=arguments.database_url,
                           queue=True)
            show("The same 1,000 viewers in one process, PostgreSQL and Redis", baseline, None)
            one_process_p99 = baseline["report"]["p99_ms"]
        if name == TWO_PROCESSES and one_process_p99:
            target = 1.5 * one_process_p99
        result = run(viewers=viewers, rate=rate, processes=processes,
                     seconds=arguments.seconds, redis_restart="restart" in name,
                     database_url=arguments.database_url)
        show(name, result, target)
        if name == TWO_PROCESSES and one_process_p99:
            print(f"  two processes / one process p99: "
                  f"{result['report']['p99_ms'] / one_process_p99:.2f} (target at most 1.5)")


if __name__ == "__main__":
    main()
