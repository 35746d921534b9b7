"""`flask --app wsgi fair simulate`: buyers signing intents live, for demos and load."""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click
import requests
from flask.cli import with_appcontext
from sqlalchemy import select

from audience import recording as audience_recording
from audience import replay as audience_replay
from deals import service
from deals import totals as deal_totals
from exhibitors.models import Project, ProjectStatus
from fair import demo
from fair.accounts import service as account_service
from fair.accounts.models import Organisation, Role, User
from fair.database import use_case
from fair.extensions import db
from fair.models import Fair
from fair.money import format_wan, format_yuan, format_yuan_grouped, parse_yuan
from fair.reference import province_name
from livehalls.models import Hall

#: The reference event's published figures (DESIGN.md).
REFERENCE_INTENTS = 3_700
REFERENCE_AMOUNT_FEN = 3_856_830_000
REPLAY_SEED = 2020
#: Where the simulated buyers come from, weighted as a fair in Chengdu would draw them.
BUYER_PROVINCES: dict[str, int] = {
    "CN-SC": 30, "CN-CQ": 14, "CN-BJ": 8, "CN-SH": 8, "CN-GD": 8, "CN-HN": 6, "CN-XZ": 5,
    "CN-YN": 5, "CN-GZ": 5, "CN-ZJ": 4, "CN-JS": 4, "CN-SN": 3,
}
BUYERS_PER_PROVINCE = 4
BUYER_PASSWORD = "simulated-buyer"  # noqa: S105 - demo logins
#: Relative sizes of intents: most are modest, a few are large (integers, no floats).
SIZE_STEPS = (1, 2, 5, 10, 20, 50, 100)
SIZE_WEIGHTS = (30, 25, 20, 12, 8, 4, 1)
#: One intent in this many is signed outside a live hall.
OUTSIDE_HALL_ONE_IN = 3
#: How many intents a simulation signs unless told.
DEFAULT_COUNT = 100


@dataclass(frozen=True)
class PlannedIntent:
    buyer: int
    project_id: int
    amount_fen: int
    hall_id: int | None
    key: str


def _size(rng: random.Random) -> int:
    return rng.choices(SIZE_STEPS, SIZE_WEIGHTS)[0] * rng.randint(80, 120)


def random_amount(rng: random.Random) -> int:
    """An intent of about 1,100 to 170,000 yuan, in whole yuan."""
    return _size(rng) * 1_400


def split_amount(total_fen: int, count: int, rng: random.Random, *, unit_fen: int = 100
                 ) -> list[int]:
    """Split a total into `count` positive amounts of whole units that add up to it exactly."""
    units, remainder = divmod(total_fen, unit_fen)
    if remainder or units < count:
        raise ValueError("the total must be whole units, at least one per intent")
    weights = [_size(rng) for _ in range(count)]
    spare = units - count  # every intent gets one unit first, so that none is zero
    shares = [1 + weight * spare // sum(weights) for weight in weights]
    for index in range(units - sum(shares)):  # what the floor divisions left: a unit each
        shares[index % count] += 1
    return [share * unit_fen for share in shares]


def plan_intents(*, count: int, projects: Sequence[int], halls: Sequence[int],
                 buyer_weights: Sequence[int], rng: random.Random, key_prefix: str,
                 total_fen: int | None = None) -> list[PlannedIntent]:
    """Who signs what, for how much, where. With `total_fen`, the amounts add up to it."""
    amounts = (split_amount(total_fen, count, rng) if total_fen is not None
               else [random_amount(rng) for _ in range(count)])
    buyers = range(len(buyer_weights))
    return [
        PlannedIntent(
            buyer=rng.choices(buyers, buyer_weights)[0],
            project_id=rng.choice(projects),
            amount_fen=amount,
            hall_id=(None if not halls or rng.randrange(OUTSIDE_HALL_ONE_IN) == 0
                     else rng.choice(halls)),
            key=f"{key_prefix}-{number}",
        )
        for number, amount in enumerate(amounts, start=1)
    ]


def find_fair(fair_id: int | None) -> Fair:
    """The fair to sign on: the one asked for, else the demo fair."""
    fair = db.session.scalar(select(Fair).where(
        Fair.id == fair_id if fair_id is not None else Fair.name == demo.DEMO_FAIR_NAME))
    if fair is None:
        raise click.ClickException(
            "No such fair." if fair_id is not None
            else "There is no demo fair yet: run `flask --app wsgi fair demo` first.")
    if not fair.is_open:
        raise click.ClickException(f"The fair 「{fair.name}」 is not open.")
    return fair


def published_projects(fair: Fair) -> list[int]:
    return list(db.session.scalars(
        select(Project.id)
        .where(Project.fair_id == fair.id, Project.status == ProjectStatus.published)
        .order_by(Project.id)
    ))


def halls_of(fair: Fair) -> list[int]:
    return list(db.session.scalars(
        select(Hall.id).where(Hall.fair_id == fair.id).order_by(Hall.id)))


@use_case()
def simulated_buyers() -> list[User]:
    """Buyers from the provinces above, created on first use (one password hash for all)."""
    wanted = {
        f"buyer-{province[3:].lower()}-{number}@simulate.fair.example": (province, number)
        for province in BUYER_PROVINCES for number in range(1, BUYERS_PER_PROVINCE + 1)
    }
    found = {user.email: user for user in db.session.scalars(
        select(User).where(User.email.in_(list(wanted))))}
    password_hash = None
    for email, (province, number) in wanted.items():
        if email in found:
            continue
        password_hash = password_hash or account_service.hash_password(BUYER_PASSWORD)
        place = province_name(province)
        found[email] = User(
            email=email, password_hash=password_hash, role=Role.buyer,
            name=f"{place}采购联系人{number}",
            organisation=Organisation(name=f"{place}文化和旅游采购团{number}", province=province),
        )
        db.session.add(found[email])
    return [found[email] for email in wanted]


def buyer_weights(buyers: Sequence[User]) -> list[int]:
    return [BUYER_PROVINCES.get(buyer.organisation.province, 1) if buyer.organisation else 1
            for buyer in buyers]


Signer = Callable[[PlannedIntent], None]


def sign_in_process(buyers: Sequence[User]) -> Signer:
    """Record each intent through the service, in this process.

    A running server's viewers see them live either way: with REDIS_URL set, their news crosses
    the message queue; on the embedded default, the server finds them in the database it shares
    (livehalls.broadcast polls the fairs its clients watch).
    """

    def sign(planned: PlannedIntent) -> None:
        service.record_intent(planned.project_id, buyer=buyers[planned.buyer],
                              amount_fen=planned.amount_fen, idempotency_key=planned.key,
                              hall_id=planned.hall_id)

    return sign


def sign_over_http(api: str, buyers: Sequence[User]) -> Signer:
    """Post each intent to a running server with its buyer's bearer token."""
    http = requests.Session()
    tokens: dict[int, str] = {}

    def sign(planned: PlannedIntent) -> None:
        if planned.buyer not in tokens:
            tokens[planned.buyer] = account_service.issue_token(buyers[planned.buyer])
        body: dict[str, object] = {"amount": format_yuan(planned.amount_fen)}
        if planned.hall_id is not None:
            body["hall_id"] = planned.hall_id
        response = http.post(
            f"{api.rstrip('/')}/api/v1/projects/{planned.project_id}/deals", json=body,
            timeout=30, headers={"Authorization": f"Bearer {tokens[planned.buyer]}",
                                 "Idempotency-Key": planned.key},
        )
        if response.status_code != 201:
            raise click.ClickException(
                f"The server refused an intent: {response.status_code} {response.text[:300]}")

    return sign


def run(planned: Sequence[PlannedIntent], sign: Signer, *, rate: float,
        report: Callable[[int], None], before: Callable[[int], object] | None = None) -> float:
    """Sign every planned intent, `rate` a second (0: as fast as possible); return seconds.
    `before(n)` runs before the n-th intent (the replay's audience)."""
    started = time.monotonic()
    for done, intent in enumerate(planned, start=1):
        if rate > 0:
            # Keep to the schedule instead of sleeping a fixed time after each intent.
            delay = started + (done - 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if before is not None:
            before(done)
        sign(intent)
        report(done)
    return time.monotonic() - started


def _wan(totals_amount: str) -> str:
    """Totals travel as yuan text and may pass one intent's limit."""
    return format_wan(parse_yuan(totals_amount, allow_zero=True, maximum_fen=sys.maxsize))


@click.command("simulate")
@click.option("--rate", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Intents a second; 0 signs as fast as possible.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="How many intents to sign (default 100); with --replay, the first COUNT "
                   "of the reference event's 3,700.")
@click.option("--replay", is_flag=True,
              help="Replay the reference event: 3,700 intents, 38,568,300.00 yuan.")
@click.option("--fair", "fair_id", type=int, default=None,
              help="The fair to sign on (default: the demo fair).")
@click.option("--api", default=None, metavar="URL",
              help="Post the intents to a running server, such as http://127.0.0.1:5000.")
@click.option("--seed", type=int, default=None, help="Random seed (default: a new one).")
@with_appcontext
def simulate_command(rate: float, count: int | None, replay: bool, fair_id: int | None,
                     api: str | None, seed: int | None) -> None:
    """Sign intents on the demo fair as simulated buyers from several provinces."""
    fair = find_fair(fair_id)
    projects, halls = published_projects(fair), halls_of(fair)
    if not projects:
        raise click.ClickException(f"The fair 「{fair.name}」 has no published project.")
    buyers = simulated_buyers()
    weights = buyer_weights(buyers)
    if replay:
        # The reference event exactly: amounts split from its total with integer arithmetic,
        # so they add up to it to the fen, and fixed idempotency keys, so replaying twice
        # changes nothing the second time.
        planned = plan_intents(count=REFERENCE_INTENTS, projects=projects, halls=halls,
                               buyer_weights=weights, rng=random.Random(REPLAY_SEED),
                               total_fen=REFERENCE_AMOUNT_FEN,
                               key_prefix=f"replay-{REPLAY_SEED}-fair-{fair.id}")[:count]
    else:
        planned = plan_intents(count=count or DEFAULT_COUNT, projects=projects, halls=halls,
                               buyer_weights=weights, rng=random.Random(seed),
                               key_prefix=f"simulate-{uuid.uuid4()}")
    sign = sign_over_http(api, buyers) if api else sign_in_process(buyers)
    before = replay_audience(fair, planned, buyers) if replay else None
    pace = "as fast as possible" if rate == 0 else f"at {rate:g} a second"
    where = f" through {api}" if api else ""
    click.echo(f"Signing {len(planned)} intents on 「{fair.name}」 (id {fair.id}) {pace}{where}.")
    step = max(1, len(planned) // 20)

    def report(done: int) -> None:
        if done % step == 0 or done == len(planned):
            totals = deal_totals.read_totals(fair.id)
            click.echo(f"  {done:>5}/{len(planned)}: the fair shows {totals['deal_count']} "
                       f"intents, {_wan(totals['amount'])} 万元")

    seconds = run(planned, sign, rate=rate, report=report, before=before)
    audience_recording.buffer().flush()  # the intents' events, before the totals are read
    totals = deal_totals.read_totals(fair.id)
    signed_fen = sum(intent.amount_fen for intent in planned)
    click.echo(
        f"Signed {len(planned)} intents worth {format_yuan_grouped(signed_fen)} yuan "
        f"({format_wan(signed_fen)} 万元) in {seconds:.1f} s. The fair shows "
        f"{totals['deal_count']} intents, {totals['amount']} yuan = {_wan(totals['amount'])} 万元 "
        f"(seq {totals['seq']}), {totals['visits']:,} visits."
    )


def replay_audience(fair: Fair, planned: Sequence[PlannedIntent], buyers: Sequence[User]
                    ) -> Callable[[int], object]:
    """Before each intent of the replay, the audience of that stretch of the reference event:
    its share of the 1,529,069 visits and the buyer's way to the intent (audience.replay),
    written for the next few intents at once."""
    catalogue = audience_replay.Catalogue.of(fair)
    halls = halls_of(fair)
    batch = audience_replay.PARTS_PER_BATCH

    def before(number: int) -> int:
        if (number - 1) % batch:
            return 0
        numbers = range(number, min(number + batch, len(planned) + 1))
        return audience_replay.replay_parts(
            fair, numbers=numbers, total_intents=REFERENCE_INTENTS, halls=halls,
            catalogue=catalogue, seed=REPLAY_SEED,
            signings=[audience_replay.Signing(buyer=buyers[planned[n - 1].buyer],
                                              project_id=planned[n - 1].project_id)
                      for n in numbers])

    return before
