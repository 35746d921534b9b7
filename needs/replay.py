"""The replay's 供需对接: part of the reference event's intents are signed from responses.

A buyer that signs for a project outside the halls may have found it through one of its needs:
the buyer publishes a need for the project's category, the project's exhibitor responds at the
amount the replay planned, and the buyer turns the response into the intent. The amounts, the
buyers and the projects are the plan's, so every total lands where it does without needs; the
needs, their titles and the responses are found again on a second run, so replaying twice
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from exhibitors.models import Exhibitor, Project
from fair.accounts import service as account_service
from fair.accounts.models import Role, User
from fair.database import use_case, utcnow
from fair.extensions import db
from fair.models import Fair
from fair.reference import category_name
from needs import service
from needs.models import Need, NeedResponse, NeedStatus

#: The exhibitors' contacts the replay signs in as, created on first use.
CONTACT_PASSWORD = "simulated-exhibitor"  # noqa: S105 - demo logins
#: How long the replay's needs stay open, from when they are published.
OPEN_FOR = dt.timedelta(days=30)
#: Budgets are rounded out to whole thousands of yuan, as buyers write them.
BUDGET_STEP_FEN = 1_000_00
NOTE = "按贵单位需求提供，可调整场次与内容。"


@dataclass(frozen=True)
class Sourced:
    """An intent the replay signs from a response: who signs for what, at what price."""

    key: str
    buyer: User
    project_id: int
    amount_fen: int


@dataclass
class _Need:
    """One need of the replay: a buyer's, for a category, and the intents it leads to."""

    buyer: User
    category: str
    title: str
    keys: list[str]
    budget_min_fen: int
    budget_max_fen: int


class NeedsReplay:
    """Publishes the needs and the responses that the replay's sourced intents are signed from.

    Each buyer has a need per category of the projects it signs for this way (split when it
    would take more responses than a need may ask for); `response_for` makes a need and its
    response when the first intent that needs them comes, and `signed` closes the need once its
    last planned response is signed.
    """

    def __init__(self, fair: Fair, sourced: Sequence[Sourced]) -> None:
        self.fair_id = fair.id
        self.sourced = {intent.key: intent for intent in sourced}
        projects = {project.id: project for project in db.session.scalars(
            select(Project).where(Project.id.in_({intent.project_id for intent in sourced})))}
        self.exhibitors = {project_id: project.exhibitor_id
                           for project_id, project in projects.items()}
        grouped: dict[tuple[int, str], list[Sourced]] = defaultdict(list)
        for intent in sourced:
            grouped[intent.buyer.id, projects[intent.project_id].category].append(intent)
        self.needs: dict[str, _Need] = {}
        for (_buyer, category), intents in grouped.items():
            for part, start in enumerate(range(0, len(intents), service.MAX_RESPONSES), 1):
                chunk = intents[start:start + service.MAX_RESPONSES]
                amounts = [intent.amount_fen for intent in chunk]
                need = _Need(
                    buyer=chunk[0].buyer, category=category,
                    title=_title(chunk[0].buyer, category, part),
                    keys=[intent.key for intent in chunk],
                    budget_min_fen=max(BUDGET_STEP_FEN,
                                       min(amounts) // BUDGET_STEP_FEN * BUDGET_STEP_FEN),
                    budget_max_fen=-(-max(amounts) // BUDGET_STEP_FEN) * BUDGET_STEP_FEN)
                self.needs.update((key, need) for key in need.keys)
        self._found: dict[str, int] = {}
        self._contacts: dict[int, User] = {}
        self._password_hash: str | None = None

    def __contains__(self, key: str) -> bool:
        return key in self.sourced

    def response_for(self, key: str) -> int:
        """The id of the response the intent of `key` is signed from, published if new."""
        intent, planned = self.sourced[key], self.needs[key]
        need = self._need(planned)
        response_id = db.session.scalar(select(NeedResponse.id).where(
            NeedResponse.need_id == need.id, NeedResponse.project_id == intent.project_id))
        if response_id is None:
            response_id = service.respond_to_need(
                need, user=self._contact(self.exhibitors[intent.project_id]),
                project_id=intent.project_id, price_fen=intent.amount_fen, note=NOTE).id
        return response_id

    def signed(self, key: str) -> None:
        """The intent of `key` is signed: its need closes after its last planned one."""
        planned = self.needs[key]
        if key == planned.keys[-1]:
            need = self._need(planned)
            if need.status is NeedStatus.open:
                service.close_need(need, buyer=planned.buyer)

    def _need(self, planned: _Need) -> Need:
        found = self._found.get(planned.title)
        need = (db.session.get(Need, found) if found is not None else db.session.scalar(
            select(Need).where(Need.fair_id == self.fair_id, Need.buyer_id == planned.buyer.id,
                               Need.title == planned.title)))
        if need is None:
            fair = db.session.get(Fair, self.fair_id)
            assert fair is not None  # noqa: S101 - the replay's fair
            need = service.create_need(
                fair, buyer=planned.buyer, title=planned.title, category=planned.category,
                province=planned.buyer.organisation.province, publish=True,
                budget_min_fen=planned.budget_min_fen, budget_max_fen=planned.budget_max_fen,
                deadline=utcnow() + OPEN_FOR, max_responses=len(planned.keys),
                description=f"本单位拟采购{category_name(planned.category)}类项目，"
                            "请参展单位以项目响应并报价，可按场次调整。")
        self._found[planned.title] = need.id
        return need

    def _contact(self, exhibitor_id: int) -> User:
        if exhibitor_id not in self._contacts:
            # One hash for every contact the replay makes, as for its buyers.
            self._password_hash = (self._password_hash
                                   or account_service.hash_password(CONTACT_PASSWORD))
            self._contacts[exhibitor_id] = exhibitor_contact(exhibitor_id, self._password_hash)
        return self._contacts[exhibitor_id]


def _title(buyer: User, category: str, part: int) -> str:
    place = buyer.organisation.name if buyer.organisation else buyer.name
    suffix = f"（{part}）" if part > 1 else ""
    return f"{place}：{category_name(category)}类项目采购{suffix}"


@use_case()
def exhibitor_contact(exhibitor_id: int, password_hash: str) -> User:
    """A user of the exhibitor's organisation to respond as: its own, else one made for the
    replay (the demo's exhibitors have no logins but the demo one)."""
    exhibitor = db.session.get(Exhibitor, exhibitor_id)
    assert exhibitor is not None  # noqa: S101 - a project's exhibitor
    user = db.session.scalar(select(User).where(
        User.organisation_id == exhibitor.organisation_id, User.role == Role.exhibitor)
        .order_by(User.id).limit(1))
    if user is None:
        user = User(email=f"exhibitor-{exhibitor.organisation_id}@simulate.fair.example",
                    password_hash=password_hash,
                    role=Role.exhibitor, name=f"{exhibitor.organisation.name} 参展联系人",
                    organisation_id=exhibitor.organisation_id)
        db.session.add(user)
    return user

