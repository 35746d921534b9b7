"""Needs search (供需对接) latency at 10,000 needs on SQLite: words, facets and budget filters
through the real ``needs.service.search_needs``. Target: p95 under 50 ms.

    .venv/bin/python -m bench.needs --needs 10000 --repeat 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import insert

from exhibitors import catalogue
from fair import create_app
from fair.accounts.models import Organisation, User
from fair.database import utcnow
from fair.extensions import db
from fair.models import Fair, FairStatus
from fair.reference import CATEGORIES
from needs import service
from needs.models import Need, NeedStatus, NeedTerm

TARGET_P95_MS = 50.0
SUBJECTS = ("非遗手工体验课", "社区文艺演出", "研学旅游线路", "数字化展陈", "文创产品定制",
            "川剧折子戏", "蜀绣培训", "熊猫主题音乐会", "乡村文化节", "图书馆阅读推广")
PLACES = ("进校园", "进社区", "景区驻场", "春节专场", "暑期", "周末")
PROVINCES = ("CN-SC", "CN-CQ", "CN-BJ", "CN-SH", "CN-GD", "CN-HN", "CN-XZ")
QUERIES = (
    service.NeedQuery(),
    service.NeedQuery(q="非遗"),
    service.NeedQuery(q="研学旅游"),
    service.NeedQuery(q="川剧", province="CN-SC"),
    service.NeedQuery(category="performance"),
    service.NeedQuery(min_budget_fen=5_000_000, max_budget_fen=10_000_000),
    service.NeedQuery(q="文创", category="creative-goods", page=3),
)


def build(count: int, *, seed: int = 2020) -> int:
    rng = random.Random(seed)
    now = utcnow()
    fair = Fair(name="需求基准", starts_at=now, ends_at=now + dt.timedelta(days=7),
                status=FairStatus.open)
    organisation = Organisation(name="重庆市文化馆", province="CN-CQ")
    db.session.add_all([fair, organisation])
    db.session.flush()
    buyer = User(email="bench@example.com", password_hash="x", name="采购",  # noqa: S106 - no sign-in, role=Role.buyer,
                 organisation_id=organisation.id)
    db.session.add(buyer)
    db.session.flush()
    rows, terms = [], []
    for number in range(1, count + 1):
        title = f"{rng.choice(SUBJECTS)}{rng.choice(PLACES)}"
        low = rng.randint(1, 200) * 100_000
        rows.append({"id": number, "fair_id": fair.id, "buyer_id": buyer.id,
                     "organisation_id": organisation.id, "title": title,
                     "description_source": "", "description_html": "",
                     "category": rng.choice(list(CATEGORIES)),
                     "province": rng.choice(PROVINCES), "city": "",
                     "budget_min_fen": low, "budget_max_fen": low * rng.randint(1, 4),
                     "deadline": now + dt.timedelta(days=rng.randint(1, 30)),
                     "max_responses": 10, "response_count": 0,
                     "status": NeedStatus.open if rng.random() < 0.8 else NeedStatus.closed,
                     "created_at": now})
        terms.extend({"need_id": number, "term": term} for term in catalogue.terms_of(title))
    db.session.execute(insert(Need), rows)
    db.session.execute(insert(NeedTerm), terms)
    db.session.commit()
    return fair.id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--needs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "needs.sqlite"
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "TESTING": True,
                          "REDIS_URL": None, "TASKS_IMMEDIATE": True,
                          "MEDIA_ROOT": str(Path(folder) / "media")})
        with app.app_context():
            upgrade()
            fair_id = build(arguments.needs)
            fair = db.session.get(Fair, fair_id)
            assert fair is not None
            wall, cpu = [], []
            for _ in range(arguments.repeat):
                for query in QUERIES:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    service.search_needs(fair, query=query)
                    wall.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - started_cpu) * 1000)
                    db.session.expunge_all()
            db.engine.dispose()
    for name, values in (("wall", wall), ("cpu", cpu)):
        cuts = statistics.quantiles(values, n=100)
        print(f"{arguments.needs} needs, {name} ms: p50 {cuts[49]:.1f}  p95 {cuts[94]:.1f}  "
              f"max {max(values):.1f}")
    print(f"load average: {os.getloadavg()}")
    return 0 if statistics.quantiles(cpu, n=100)[94] < TARGET_P95_MS else 1


if __name__ == "__main__":
    sys.exit(main())
