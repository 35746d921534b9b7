"""Pages: a buyer's intents, an exhibitor's intents received, an organiser's list of all."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from deals import service
from fair import permissions
from fair import service as fair_service
from fair.accounts.models import Role
from fair.auth import current_user

bp = Blueprint("deal_pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/deals")

PER_PAGE = 50


@bp.get("/my/intents")
def my_intents() -> str:
    """A buyer's own intents, with a withdraw button on each active one."""
    permissions.require_role(current_user(), Role.buyer)
    return _intents_page("deals/my_intents.html")


@bp.post("/my/intents/<int:intent_id>/withdraw")
def withdraw(intent_id: int) -> Response:
    user = current_user()
    intent = service.withdraw_intent(service.access_intent(intent_id, user), buyer=user)
    flash(_("已撤回对“%(title)s”的签约意向。", title=intent.project.title), "success")
    return redirect(url_for("deal_pages.my_intents"))


@bp.get("/portal/intents")
def received_intents() -> str:
    """The intents an exhibitor received on its projects: its leads, to download."""
    permissions.require_role(current_user(), Role.exhibitor)
    return _intents_page("deals/fair_intents.html", heading=_("收到的签约意向"),
                         empty=_("您的项目还没有收到签约意向。"))


@bp.get("/organiser/intents")
def all_intents() -> str:
    """Every intent of the fair, for organisers, to download."""
    permissions.require_organiser(current_user())
    return _intents_page("deals/fair_intents.html", heading=_("全部签约意向"),
                         empty=_("本届大会还没有签约意向。"))


def _intents_page(template: str, **words: str) -> str:
    user = current_user()
    fair = fair_service.access_current_fair()
    page_number = request.args.get("page", 1, type=int) or 1
    page = service.list_intents(fair, user=user, page=max(1, page_number), per_page=PER_PAGE)
    return render_template(
        template, fair=fair, page=page, page_number=max(1, page_number),
        page_count=max(1, -(-page.total // PER_PAGE)),
        summary=service.summarise_intents(fair, user=user), **words,
    )


# --- The organiser's page of buyers' organisations ----------------------------------------


@bp.get("/organiser/buyers")
def buyers() -> str:
    """Buyers' organisations to verify (or verified), with what they have signed."""
    verified = request.args.get("status") == "verified"
    organisations = service.list_buyer_organisations(organiser=current_user(), verified=verified)
    return render_template("deals/buyers.html", organisations=organisations, verified=verified)


@bp.post("/organiser/buyers/<int:organisation_id>/verify")
def verify_buyer(organisation_id: int) -> Response:
    organisation = service.verify_organisation(organisation_id, organiser=current_user())
    flash(_("已核验 %(name)s，其签约意向计入总额。", name=organisation.name), "success")
    return redirect(url_for("deal_pages.buyers"))


@bp.post("/organiser/buyers/<int:organisation_id>/unverify")
def unverify_buyer(organisation_id: int) -> Response:
    organisation = service.unverify_organisation(organisation_id, organiser=current_user())
    flash(_("已取消 %(name)s 的核验，其签约意向不再计入总额。", name=organisation.name), "success")
    return redirect(url_for("deal_pages.buyers", status="verified"))
