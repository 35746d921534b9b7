"""The recommender at the reference scale: rebuild time, and serving p50/p95 of
GET /api/v1/fairs/{id}/recommendations and /projects/{id}/also, alone and while another process
rebuilds the model over and over (as the task consumer would).

    DATABASE_URL=sqlite:////path/fair.sqlite .venv/bin/python bench/recommend.py \
        [--requests 600] [--rebuilds 3] [--fair ID]

Run it on a database holding the replayed reference event (`flask --app wsgi fair demo`, then
`flask --app wsgi fair simulate --replay --rate 0`: 890 projects, 3,700 intents, 1,529,069
visits and the buyers' views, searches and favourites). Requests go through the app's WSGI
stack in this process (Flask's test client): the time is the server's, without the network.
Half are the simulated buyers (bearer tokens), half anonymous visitors (a visitor cookie).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from deals.simulate import find_fair, simulated_buyers  # noqa: E402
from exhibitors.models import Project, ProjectStatus  # noqa: E402
from fair import create_app  # noqa: E402
from fair.accounts import service as account_service  # noqa: E402
from fair.extensions import db  # noqa: E402
from recommend import service  # noqa: E402
from recommend.models import StoredModel  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rebuilds", type=int, default=3)
    parser.add_argument("--fair", type=int, default=None)
    options = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("Set DATABASE_URL to the database of the replayed reference event.")
    app = create_app({"AUDIENCE_FLUSH_SECONDS": 0})
    with app.app_context():
        fair = find_fair(options.fair)
        fair_id = fair.id
        seconds = []
        for _ in range(options.rebuilds):
            built = service.rebuild(fair_id)
            seconds.append(built.seconds)
        print(f"rebuild of fair {fair_id}: {built.projects} projects, {built.interactions:,} "
              f"interactions; {options.rebuilds} runs, median {statistics.median(seconds):.2f} s, "
              f"max {max(seconds):.2f} s")
        tokens = [account_service.issue_token(buyer) for buyer in simulated_buyers()]
        projects = list(db.session.scalars(select(Project.id).where(
            Project.fair_id == fair_id, Project.status == ProjectStatus.published)))
        db.session.commit()
    rng = random.Random(7)

    def serve(count: int, label: str) -> list[float]:
        client = app.test_client()
        timings, cpu = [], []
        errors = 0
        for number in range(count):
            if number % 2:
                headers = {"Authorization": f"Bearer {rng.choice(tokens)}"}
                client.delete_cookie("fair_visitor")
            else:
                headers = {}
                client.set_cookie("fair_visitor", f"{rng.getrandbits(128):032x}")
            started, started_cpu = time.perf_counter(), time.thread_time()
            response = client.get(f"/api/v1/fairs/{fair_id}/recommendations?limit=10",
                                  headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            errors += response.status_code != 200
        print(f"{label}: {count} requests, p50 {percentile(timings, 0.5):.1f} ms, "
              f"p95 {percentile(timings, 0.95):.1f} ms, max {max(timings):.1f} ms, "
              f"errors {errors}; CPU time p50 {percentile(cpu, 0.5):.1f} ms, "
              f"p95 {percentile(cpu, 0.95):.1f} ms (the wall times count the waits of a shared "
              f"machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        return timings

    serve(20, "warm-up")
    serve(options.requests, "recommendations")
    client = app.test_client()
    also = []
    for _ in range(options.requests // 2):
        started = time.perf_counter()
        assert client.get(f"/api/v1/projects/{rng.choice(projects)}/also").status_code == 200
        also.append((time.perf_counter() - started) * 1000)
    print(f"also: {len(also)} requests, p50 {percentile(also, 0.5):.1f} ms, "
          f"p95 {percentile(also, 0.95):.1f} ms")

    # Rebuilds in another process, as the task consumer makes them, while this one serves.
    rebuilder = subprocess.Popen(
        [sys.executable, "-c", REBUILD_FOREVER, str(fair_id)], cwd=ROOT, env=os.environ.copy())
    try:
        time.sleep(2)
        with app.app_context():
            service.RECHECK_SECONDS = 0.0  # every request asks for the newest model
            serve(options.requests, "recommendations while rebuilding")
            version = db.session.scalar(select(StoredModel.version)
                                        .where(StoredModel.fair_id == fair_id))
    finally:
        rebuilder.terminate()
        rebuilder.wait()
    print(f"model version at the end: {version} ({version - options.rebuilds} rebuilt meanwhile)")


#: A task consumer's work, over and over: rebuild the fair's model.
REBUILD_FOREVER = """
import sys
from fair import create_app
from recommend import service
app = create_app()
with app.app_context():
    while True:
        service.rebuild(int(sys.argv[1]))
"""


if __name__ == "__main__":
    main()
