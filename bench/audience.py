"""The audience on PostgreSQL: the beacon's events a second, the deals writers beside 1,000
events a second, the portrait's queries at 41 million events, and disk bytes per event.

    .venv/bin/python bench/audience.py [--events 4100000] [--senders 8] [--servers 2]
        [--deal-seconds 20] [--portrait-events 41000000] [--queries 40]

Builds its own PostgreSQL database from the migrations with the demo fair, starts gunicorn
processes (one gevent worker each) and:

1. posts beacon batches of 500 impressions over HTTP (bearer tokens) until `--events` were
   accepted; prints events a second accepted, and written (counted in the table once every
   process's buffer was flushed);
2. runs bench/deals.py's writers alone, then with beacon batches arriving at 1,000 events a
   second beside them, and prints both rates and their ratio;
3. measures disk bytes per event (the events table with its indexes, over the events phase 1
   wrote), then fills the rollups as `--portrait-events` events spread over 30 days would (one
   INSERT ... SELECT: the raw rows of 41 million events are not needed by any portrait query,
   and the bytes per event say what they would take), and times every portrait query: the
   organiser's (GET /insights) and an exhibitor's, p50 and p95.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from servers import ROOT, gunicorn, postgres_database, server_environment

sys.path.insert(0, str(ROOT))

BATCH = 500


def _deals_bench() -> Any:
    """bench/deals.py, loaded by its path: its name is also the `deals` package's."""
    spec = importlib.util.spec_from_file_location("deals_bench", ROOT / "bench" / "deals.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Sent:
    accepted: int = 0
    refused: int = 0
    batches: int = 0
    failures: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def beacon_body(fair_id: int, projects: list[int], offset: int) -> bytes:
    return json.dumps({"events": [
        {"kind": "impression", "fair_id": fair_id, "object_type": "project",
         "object_id": projects[(offset + n) % len(projects)]} for n in range(BATCH)]}).encode()


def sender(port: int, token: str, body: bytes, *, until: Callable[[], bool], pace: float,
           sent: Sent) -> None:
    """Post batches until `until()` says stop; `pace` seconds between batches (0: at once)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    next_at = time.monotonic()
    while not until():
        if pace:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += pace
        started = time.perf_counter()
        connection.request("POST", "/api/v1/events", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        with sent.lock:
            if response.status != 202:
                sent.failures[response.status] = sent.failures.get(response.status, 0) + 1
                continue
            answer = json.loads(data)
            sent.accepted += answer["accepted"]
            sent.refused += len(answer["refused"])
            sent.batches += 1
            sent.latencies.append(elapsed)


def count_events(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        return int(connection.execute("SELECT count(*) FROM audience_events").fetchone()[0])


def beacon_phase(stage: Any, ports: list[int], database_url: str, *, events: int,
                 senders: int) -> int:
    sent = Sent()
    body = beacon_body(stage.fair_id, stage.projects, 0)
    threads = [threading.Thread(target=sender, args=(
        ports[n % len(ports)], stage.buyer_tokens[n % len(stage.buyer_tokens)], body),
        kwargs={"until": lambda: sent.accepted >= events, "pace": 0, "sent": sent})
        for n in range(senders)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted_in = time.monotonic() - started
    # Every process writes what it holds within a second; wait until the table has it all.
    while (written := count_events(database_url)) < sent.accepted:
        if time.monotonic() - started > accepted_in + 60:
            break
        time.sleep(0.2)
    written_in = time.monotonic() - started
    latencies = sorted(sent.latencies)
    print(f"Beacon alone: {sent.accepted:,} events accepted in {accepted_in:.1f} s = "
          f"{sent.accepted / accepted_in:,.0f} events/s ({sent.batches:,} batches of {BATCH}, "
          f"POST p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms); "
          f"{written:,} written in {written_in:.1f} s = {written / written_in:,.0f} events/s; "
          f"refused {sent.refused}, failures {sent.failures or 'none'}")
    return written


def deals_phase(deals_bench: Any, stage: Any, ports: list[int], *, seconds: float,
                writers: int) -> None:
    alone = deals_bench.write(stage, ports, writers=writers, seconds=seconds)
    deals_bench.report("Deals writers alone", alone, seconds)
    stop = threading.Event()
    sent = Sent()
    body = beacon_body(stage.fair_id, stage.projects, 7)
    # Two senders, each a batch of 500 every second: 1,000 events a second.
    beacons = [threading.Thread(target=sender, args=(
        ports[n % len(ports)], stage.buyer_tokens[n], body),
        kwargs={"until": stop.is_set, "pace": 1.0, "sent": sent}) for n in range(2)]
    for thread in beacons:
        thread.start()
    beside = deals_bench.write(stage, ports, writers=writers, seconds=seconds)
    stop.set()
    for thread in beacons:
        thread.join()
    deals_bench.report("Deals writers with 1,000 events/s beside", beside, seconds)
    ratio = len(beside.latencies) / max(1, len(alone.latencies))
    print(f"Events beside the writers: {sent.accepted / seconds:,.0f}/s; the writers kept "
          f"{ratio:.0%} of their rate alone (target 90%).")


def disk_per_event(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE audience_events")
        size, count = connection.execute(
            "SELECT pg_total_relation_size('audience_events'), count(*) FROM audience_events"
        ).fetchone()
        rollups = connection.execute(
            "SELECT pg_total_relation_size('audience_rollups')").fetchone()[0]
    print(f"Disk: {size / max(1, count):.0f} bytes per raw event with its indexes "
          f"({size / 1e6:.0f} MB for {count:,}); the rollups {rollups / 1e6:.1f} MB.")


def fill_portrait(database_url: str, fair_id: int, *, events: int) -> None:
    """The rollups of `events` events over 30 days: visits, views, impressions, searches,
    favourites and intents across the fair's projects, halls and 34 provinces."""
    started = time.monotonic()
    with psycopg.connect(database_url) as connection:
        projects = connection.execute(
            "SELECT id, category FROM projects WHERE fair_id = %s AND status = 'published'",
            (fair_id,)).fetchall()
        halls = [row[0] for row in connection.execute(
            "SELECT id FROM halls WHERE fair_id = %s", (fair_id,))]
        provinces = ["CN-SC", "CN-CQ", "CN-BJ", "CN-SH", "CN-GD", "CN-HN", "CN-XZ", "CN-YN",
                     "CN-GZ", "CN-ZJ", "CN-JS", "CN-SN", "CN-HB", "CN-HA", "CN-SD", "CN-FJ",
                     "CN-GX", "CN-GS", "CN-QH", "CN-NX", "CN-XJ", "CN-NM", "CN-LN", "CN-JL",
                     "CN-HL", "CN-HE", "CN-SX", "CN-AH", "CN-JX", "CN-HI", "CN-TJ", "CN-HK",
                     "CN-MO", "CN-TW", ""]
        connection.execute("CREATE TEMP TABLE p (n int, id int, category text)")
        with connection.cursor().copy("COPY p FROM STDIN") as copy:
            for number, (project_id, category) in enumerate(projects):
                copy.write_row((number, project_id, category))
        per_kind = {"view": 0.30, "impression": 0.40, "favourite": 0.02, "intent": 0.0001}
        cells = 30 * len(projects) * len(provinces)
        for kind, share in per_kind.items():
            # Each (day, project, province) cell gets its share of the events.
            count = max(1, int(events * share / cells))
            connection.execute(
                "INSERT INTO audience_rollups (day, fair_id, kind, project_id, hall_id,"
                " showcase_id, category, province, count, seconds)"
                " SELECT DATE '2026-11-01' + d, %s, %s, p.id, 0, 0, p.category, pr, %s, 0"
                " FROM generate_series(0, 29) d, p, unnest(%s::text[]) pr"
                " ON CONFLICT DO NOTHING", (fair_id, kind, count, provinces))
        visits = int(events * 0.27 / (30 * (len(halls) + 1)))
        for hall in [0, *halls]:
            connection.execute(
                "INSERT INTO audience_rollups (day, fair_id, kind, project_id, hall_id,"
                " showcase_id, category, province, count, seconds)"
                " SELECT DATE '2026-11-01' + d, %s, %s, 0, %s, 0, '', '', %s, 0"
                " FROM generate_series(0, 29) d ON CONFLICT DO NOTHING",
                (fair_id, "hall_visit" if hall else "visit", hall, visits))
        connection.execute(
            "INSERT INTO audience_searches (day, fair_id, terms, searches, zero_results)"
            " SELECT DATE '2026-11-01' + d, %s, 'word ' || w, 1000 + w, w %% 7"
            " FROM generate_series(0, 29) d, generate_series(1, 5000) w ON CONFLICT DO NOTHING",
            (fair_id,))
        connection.execute(
            "INSERT INTO audience_reach (fair_id, project_id, kind, province, actor)"
            " SELECT %s, p.id, k, 'CN-SC', 'u' || a FROM p, unnest(ARRAY['view', 'favourite',"
            " 'intent']) k, generate_series(1, 20) a ON CONFLICT DO NOTHING", (fair_id,))
        # The per-dimension breakdowns the organiser's portrait reads, from those rollups.
        for dimension, column in (("day", "day::text"), ("project", "project_id::text"),
                                  ("hall", "hall_id::text"), ("showcase", "showcase_id::text"),
                                  ("category", "category"), ("province", "province")):
            # Only the column names of the list above are joined in.
            statement = (
                "INSERT INTO audience_breakdown"  # noqa: S608
                " (fair_id, kind, dimension, key, count, seconds)"
                f" SELECT fair_id, kind, %s, {column}, sum(count), sum(seconds)"
                " FROM audience_rollups WHERE fair_id = %s GROUP BY fair_id, kind, 4"
                " ON CONFLICT DO NOTHING")
            connection.execute(statement, (dimension, fair_id))
        connection.execute("ANALYZE")
        rows = connection.execute("SELECT count(*), sum(count) FROM audience_rollups").fetchone()
    print(f"Portrait data: {rows[0]:,} rollup rows standing for {int(rows[1]):,} events "
          f"(filled in {time.monotonic() - started:.0f} s).")


def time_portrait(env: dict[str, str], fair_id: int, *, queries: int) -> None:
    os.environ.update(env)
    from sqlalchemy import select

    from audience import insights
    from exhibitors.models import Exhibitor
    from fair import create_app
    from fair.accounts.models import Role, User
    from fair.extensions import db
    from fair.models import Fair

    app = create_app()
    with app.app_context():
        fair = db.session.get(Fair, fair_id)
        organiser = db.session.scalar(select(User).where(User.role == Role.organiser))
        exhibitor = db.session.scalar(select(Exhibitor).where(Exhibitor.fair_id == fair_id))
        owner = db.session.scalar(select(User).where(
            User.organisation_id == exhibitor.organisation_id))
        for name, run in (("organiser's portrait (GET /insights)",
                           lambda: insights.fair_insights(fair, user=organiser)),
                          ("an exhibitor's portrait (GET /insights/own)",
                           lambda: insights.exhibitor_insights(fair, user=owner))):
            times = []
            for _ in range(queries):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
                db.session.rollback()
            times.sort()
            print(f"{name}: p50 {statistics.median(times) * 1000:.0f} ms, "
                  f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.0f} ms over {queries} "
                  "(target p95 < 300 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4_100_000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--servers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--deal-seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--portrait-events", type=int, default=41_000_000)
    parser.add_argument("--queries", type=int, default=40)
    arguments = parser.parse_args()
    deals_bench = _deals_bench()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fair-bench-")))
        database_url = stack.enter_context(postgres_database("fair_audience"))
        env = server_environment(database_url, None, folder / "media")
        stage = deals_bench.build_stage(env, folder / "media")
        running = [stack.enter_context(gunicorn(env, folder / f"gunicorn-{n}.log"))
                   for n in range(arguments.servers)]
        ports = [server.port for server in running]
        print(f"Demo fair {stage.fair_id}: {len(stage.projects)} projects; "
              f"{arguments.servers} gunicorn processes (one gevent worker each).")
        if arguments.events:
            beacon_phase(stage, ports, database_url, events=arguments.events,
                         senders=arguments.senders)
            disk_per_event(database_url)
        if arguments.deal_seconds:
            deals_phase(deals_bench, stage, ports, seconds=arguments.deal_seconds,
                        writers=arguments.writers)
        if arguments.portrait_events:
            fill_portrait(database_url, stage.fair_id, events=arguments.portrait_events)
            time_portrait(env, stage.fair_id, queries=arguments.queries)
        for number in range(arguments.servers):
            log = (folder / f"gunicorn-{number}.log").read_text(errors="replace")
            if "Traceback" in log:
                print(f"gunicorn {number} logged an error:\n{log[-2000:]}")


if __name__ == "__main__":
    main()
