"""The OpenAPI document is exact: schemathesis 4 (every check, every phase, bounded, a fixed
seed) against a real server, anonymous and with a token of each role, finds nothing.

Run by hand for the figures: `python -m tests.test_openapi DATABASE_DIR` is not needed; the
test prints each role's failure count, and `FAIR_SCHEMATHESIS_EXAMPLES` raises the bound.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask

from exhibitors import service as exhibitor_service
from fair import service as fair_service
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import FairStatus
from livehalls.models import Hall
from tests.localstripe import LocalStripe
from tests.serving import ROOT, Server, serve

#: A fixed seed and a bound, so that CI runs the same requests every time, in minutes.
SEED = 20261201
MAX_EXAMPLES = int(os.environ.get("FAIR_SCHEMATHESIS_EXAMPLES", "8"))
ROLES = ["anonymous", "organiser", "exhibitor", "buyer"]
_FAILURES = re.compile(r"^=+ (\d+) failures?\b", re.M)
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Each run's whole report lands here (gitignored), for a person to read.
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def stage(app: Flask, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
          ) -> dict[str, str]:
    """An open fair with an approved exhibitor's published project, a hall and a buyer; a
    bearer token of each role (issued directly: the token endpoint is rate-limited)."""
    monkeypatch.setattr(account_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    organiser = make_user(Role.organiser)
    starts = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    fair = fair_service.create_fair(organiser=organiser, name="接口文档测试",
                                    starts_at=starts, ends_at=starts + dt.timedelta(days=3))
    fair_service.update_fair(fair, organiser=organiser, changes={"status": FairStatus.open})
    exhibitor = make_user(Role.exhibitor)
    stand = exhibitor_service.apply_to_fair(fair, user=exhibitor)
    exhibitor_service.approve_exhibitor(stand, organiser=organiser)
    project = exhibitor_service.create_project(fair, user=exhibitor, title="川剧变脸",
                                               category="performance", price_fen=100_000)
    exhibitor_service.publish_project(project, user=exhibitor)
    db.session.add(Hall(fair_id=fair.id, name="一号厅", stream_url=""))
    db.session.commit()
    buyer = make_user(Role.buyer)
    return {role.value: account_service.issue_token(user)
            for role, user in ((Role.organiser, organiser), (Role.exhibitor, exhibitor),
                               (Role.buyer, buyer))}


@pytest.fixture
def api_server(app: Flask, tmp_path: Path, stage: dict[str, str], localstripe: LocalStripe
               ) -> Iterator[Server]:
    """The fair on the stage's data, with payments on (localstripe), rate limits out of the
    way of a run that signs in with wrong passwords on purpose."""
    database_file = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    db.engine.dispose()
    with serve(database_file, log=tmp_path / "server.log",
               media_root=Path(app.config["MEDIA_ROOT"]),
               environment={**localstripe.settings,
                            "SIGN_IN_ACCOUNT_LIMIT": "1000 per minute",
                            "SIGN_IN_ADDRESS_LIMIT": "1000 per minute",
                            "REGISTER_ADDRESS_LIMIT": "1000 per minute"}) as server:
        yield server


def schemathesis(server: Server, token: str | None, report: Path) -> tuple[int, str]:
    """Run schemathesis once; its exit code and what it printed."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{server.url}/api/v1/openapi.json",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--workers", "1", "--request-timeout", "20", "--no-color",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        "--suppress-health-check", "all",
    ]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                              timeout=1800, check=False)
    return finished.returncode, finished.stdout + finished.stderr


def failure_count(output: str) -> int:
    counts = [int(number) for number in _FAILURES.findall(output)]
    return sum(counts)


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_no_failure(api_server: Server, stage: dict[str, str], role: str,
                                       tmp_path: Path) -> None:
    code, output = schemathesis(api_server, stage.get(role), tmp_path / "events.ndjson")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"schemathesis-{role}.txt").write_text(output)
    print(f"schemathesis {role}: exit {code}, failures {failure_count(output)}")
    assert "Tested:" in output, output[-3000:]  # it reached the operations
    assert code == 0, output[-6000:]


def main(argv: list[str]) -> None:
    """`python -m tests.test_openapi URL TOKEN...`: print each run's failure count."""
    url, *tokens = argv
    server = Server(url, Path("/dev/null"))
    for token in [None, *tokens]:
        report = Path(tempfile.gettempdir()) / "st-events.ndjson"
        code, output = schemathesis(server, token or None, report)
        print(json.dumps({"token": bool(token), "exit": code, "failures": failure_count(output)}))


if __name__ == "__main__":
    main(sys.argv[1:])
