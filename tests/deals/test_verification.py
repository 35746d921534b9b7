"""Buyers' organisations verified by the organisers: until then their intents are recorded but
not counted in the public totals; verifying counts them, taking it back uncounts them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from deals import service, ticker
from deals import totals as deal_totals
from deals.models import Intent, IntentStatus
from exhibitors.models import Project
from fair import permissions
from fair.accounts.models import Organisation, Role, User
from fair.errors import Forbidden, NotFound, Unauthorized
from fair.extensions import db
from fair.models import Fair
from tests.conftest import BroadcastRecorder
from tests.pages import post_form, sign_in

Sign = Callable[..., Intent]


@pytest.fixture
def unverified(make_user: Callable[..., User]) -> User:
    return make_user(Role.buyer, province="CN-XZ", verified=False)


def counted_figures(fair: Fair) -> tuple[int, int, int, int, int]:
    """What the totals must say, summed from the intents: active and counted ones only."""
    active = select(Intent).where(Intent.fair_id == fair.id, Intent.counted,
                                  Intent.status == IntentStatus.active).subquery()
    amount, deals, projects, buyers, secured = db.session.execute(select(
        func.coalesce(func.sum(active.c.amount_fen), 0), func.count(),
        func.count(active.c.project_id.distinct()), func.count(active.c.buyer_id.distinct()),
        func.count().filter(active.c.secured),
    )).one()
    return amount, deals, projects, buyers, secured


def stored_figures(fair: Fair) -> tuple[int, int, int, int, int]:
    totals = deal_totals.read_figures(fair.id)
    return (totals.amount_fen, totals.deal_count, totals.project_count, totals.buyer_count,
            totals.secured_count)


def test_an_unverified_organisations_intent_is_recorded_but_not_counted(
    fair: Fair, project: Project, buyer: User, unverified: User, sign: Sign,
    broadcasts: BroadcastRecorder,
) -> None:
    with broadcasts.expect(3):  # a counted intent: its deal and the totals, to every room
        sign(project, buyer, 300_00)
    before = deal_totals.read_figures(fair.id)
    with broadcasts.expect(0):
        intent = sign(project, unverified, 99_999_999_00)
    assert intent.is_active
    assert not intent.counted
    after = deal_totals.read_figures(fair.id)
    assert after == before
    assert after.by_buyer_province == {"CN-CQ": (300_00, 1)}
    assert intent.id not in {deal["id"] for deal in ticker.read_deals(fair.id, after=None,
                                                                      limit=10)}


def test_verifying_counts_the_intents_already_signed_and_moves_seq(
    fair: Fair, project: Project, make_project: Callable[..., Project], unverified: User,
    organiser: User, sign: Sign, broadcasts: BroadcastRecorder,
) -> None:
    other = make_project(fair, title="藏戏", category="intangible-heritage")
    sign(project, unverified, 100_00)
    sign(other, unverified, 250_00)
    withdrawn = sign(project, unverified, 400_00)
    service.withdraw_intent(withdrawn, buyer=unverified)
    assert stored_figures(fair) == (0, 0, 0, 0, 0)
    seq = deal_totals.read_figures(fair.id).seq

    with broadcasts.expect(2) as sent:  # the totals, to the dashboard and the halls
        organisation = service.verify_organisation(unverified.organisation_id,
                                                   organiser=organiser)
    assert organisation.is_verified
    assert organisation.verified_by == organiser.id
    totals = deal_totals.read_figures(fair.id)
    assert stored_figures(fair) == counted_figures(fair) == (350_00, 2, 2, 1, 0)
    assert totals.by_buyer_province == {"CN-XZ": (350_00, 2)}
    assert totals.seq == seq + 2
    assert {message.event for message in sent} == {"totals"}
    assert {message.payload["seq"] for message in sent} == {totals.seq}
    # The withdrawn intent is marked as counted too, but stays out of the totals.
    assert db.session.scalar(select(Intent.counted).where(Intent.id == withdrawn.id))

    # Verifying again changes nothing.
    service.verify_organisation(unverified.organisation_id, organiser=organiser)
    assert deal_totals.read_figures(fair.id).seq == totals.seq


def test_a_verified_organisations_new_intents_count_at_once(
    fair: Fair, project: Project, unverified: User, organiser: User, sign: Sign,
    broadcasts: BroadcastRecorder,
) -> None:
    service.verify_organisation(unverified.organisation_id, organiser=organiser)
    db.session.expire_all()  # the buyer's organisation is read again, as a new request would
    with broadcasts.expect(3):
        intent = sign(project, unverified, 500_00)
    assert intent.counted
    assert stored_figures(fair) == (500_00, 1, 1, 1, 0)


def test_taking_a_verification_back_takes_its_intents_out_of_the_totals(
    fair: Fair, project: Project, buyer: User, unverified: User, organiser: User, sign: Sign,
) -> None:
    sign(project, buyer, 300_00)
    mine = sign(project, unverified, 700_00)
    db.session.execute(update(Intent).where(Intent.id == mine.id).values(secured=True))
    db.session.commit()
    service.verify_organisation(unverified.organisation_id, organiser=organiser)
    assert stored_figures(fair) == counted_figures(fair) == (1000_00, 2, 1, 2, 1)
    seq = deal_totals.read_figures(fair.id).seq

    organisation = service.unverify_organisation(unverified.organisation_id, organiser=organiser)
    assert not organisation.is_verified
    assert organisation.verified_by is None
    assert stored_figures(fair) == counted_figures(fair) == (300_00, 1, 1, 1, 0)
    assert deal_totals.read_figures(fair.id).seq == seq + 1
    db.session.expire_all()
    later = sign(project, unverified, 50_00)
    assert not later.counted
    assert stored_figures(fair) == (300_00, 1, 1, 1, 0)


def test_withdrawing_an_uncounted_intent_leaves_the_totals_alone(
    fair: Fair, project: Project, buyer: User, unverified: User, sign: Sign,
    broadcasts: BroadcastRecorder,
) -> None:
    with broadcasts.expect(3):
        sign(project, buyer, 300_00)
    intent = sign(project, unverified, 700_00)
    before = deal_totals.read_figures(fair.id)
    with broadcasts.expect(0):
        withdrawn = service.withdraw_intent(intent, buyer=unverified)
    assert withdrawn.status is IntentStatus.withdrawn
    assert deal_totals.read_figures(fair.id) == before


@pytest.mark.parametrize("verify", [service.verify_organisation, service.unverify_organisation])
def test_only_organisers_verify_and_only_buyers_organisations(
    verify: Callable[..., Organisation], unverified: User, make_user: Callable[..., User],
) -> None:
    assert unverified.organisation_id is not None
    with pytest.raises(Unauthorized):
        verify(unverified.organisation_id, organiser=None)
    with pytest.raises(Forbidden):
        verify(unverified.organisation_id, organiser=unverified)
    exhibitor = make_user(Role.exhibitor)
    with pytest.raises(NotFound):
        verify(exhibitor.organisation_id, organiser=make_user(Role.organiser))
    with pytest.raises(NotFound):
        verify(999_999, organiser=make_user(Role.organiser))
    db.session.expire_all()
    organisation = db.session.get(Organisation, unverified.organisation_id)
    assert organisation is not None
    assert organisation.verified_at is None


def test_only_a_verified_buyer_passes_require_verified_buyer(
    buyer: User, unverified: User, organiser: User,
) -> None:
    assert permissions.require_verified_buyer(buyer) is buyer
    with pytest.raises(Forbidden) as refused:
        permissions.require_verified_buyer(unverified)
    assert refused.value.code == "not_verified"
    with pytest.raises(Forbidden):
        permissions.require_verified_buyer(organiser)


# --- The API and the page ----------------------------------------------------------------------


def test_the_api_verifies_and_unverifies_for_organisers_only(
    client: FlaskClient, token_for: Callable[[User], dict[str, str]], fair: Fair,
    project: Project, unverified: User, organiser: User, sign: Sign,
) -> None:
    intent = sign(project, unverified, 700_00)
    path = f"/api/v1/organisations/{unverified.organisation_id}/verify"
    deal = client.get(f"/api/v1/deals/{intent.id}", headers=token_for(unverified))
    assert deal.json["counted"] is False
    assert client.get("/api/v1/me", headers=token_for(unverified)).json[
        "organisation"]["verified"] is False

    assert client.post(path).status_code == 401
    refused = client.post(path, headers=token_for(unverified))
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "wrong_role"
    assert client.post("/api/v1/organisations/999999/verify",
                       headers=token_for(organiser)).status_code == 404
    assert client.get(f"/api/v1/fairs/{fair.id}/totals").json["amount"] == "0.00"

    verified = client.post(path, headers=token_for(organiser))
    assert verified.status_code == 200
    assert verified.json["verified"] is True
    assert verified.json["verified_at"] is not None
    assert client.get(f"/api/v1/fairs/{fair.id}/totals").json["amount"] == "700.00"
    assert client.get(f"/api/v1/deals/{intent.id}",
                      headers=token_for(unverified)).json["counted"] is True

    taken_back = client.delete(path, headers=token_for(organiser))
    assert taken_back.status_code == 200
    assert taken_back.json["verified"] is False
    assert taken_back.json["verified_at"] is None
    assert client.get(f"/api/v1/fairs/{fair.id}/totals").json["amount"] == "0.00"


def test_the_organiser_verifies_a_buyer_on_the_page(
    client: FlaskClient, fair: Fair, project: Project, unverified: User, organiser: User,
    sign: Sign,
) -> None:
    sign(project, unverified, 700_00)
    sign_in(client, organiser)
    pending = client.get("/organiser/buyers")
    assert pending.status_code == 200
    text = pending.get_data(as_text=True)
    assert f'id="organisation-{unverified.organisation_id}"' in text
    assert "700.00" in text

    verified = post_form(client, f"/organiser/buyers/{unverified.organisation_id}/verify")
    assert verified.status_code == 302
    assert client.get(f"/api/v1/fairs/{fair.id}/totals").json["amount"] == "700.00"
    assert f'id="organisation-{unverified.organisation_id}"' not in client.get(
        "/organiser/buyers").get_data(as_text=True)
    listed = client.get("/organiser/buyers?status=verified").get_data(as_text=True)
    assert f'id="organisation-{unverified.organisation_id}"' in listed

    taken_back = post_form(client, f"/organiser/buyers/{unverified.organisation_id}/unverify")
    assert taken_back.status_code == 302
    assert client.get(f"/api/v1/fairs/{fair.id}/totals").json["amount"] == "0.00"


def test_only_organisers_open_the_verification_page(
    client: FlaskClient, unverified: User,
) -> None:
    assert client.get("/organiser/buyers").status_code in (302, 401)
    sign_in(client, unverified)
    assert client.get("/organiser/buyers").status_code == 403
