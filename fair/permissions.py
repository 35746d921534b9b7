"""Who may do what: the one module that decides. Services call these before they change
anything; each raises Unauthorized when nobody is signed in, Forbidden when the user may not."""

from __future__ import annotations

from typing import Protocol

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from fair.accounts.models import Role, User
from fair.errors import Forbidden, Unauthorized
from fair.models import Fair

# What the rules read of the domain packages' models, as protocols: the core of fair imports no
# domain package (exhibitors.models.Exhibitor and Project, deals.models.Intent and Payment).


class Exhibitor(Protocol):
    @property
    def organisation_id(self) -> int: ...
    @property
    def is_approved(self) -> bool: ...
    @property
    def booth_fee_paid(self) -> bool: ...


class Project(Protocol):
    @property
    def exhibitor(self) -> Exhibitor: ...
    @property
    def is_published(self) -> bool: ...


class Intent(Protocol):
    @property
    def buyer_id(self) -> int: ...
    @property
    def project(self) -> Project: ...


class Payment(Protocol):
    @property
    def payer_id(self) -> int: ...


#: Each role as a refusal names it.
ROLE_NAMES = {Role.organiser: _l("主办方"), Role.exhibitor: _l("参展商"), Role.buyer: _l("采购方")}


def require_user(user: User | None) -> User:
    """Anyone signed in."""
    if user is None:
        raise Unauthorized()
    return user


def require_role(user: User | None, *roles: Role) -> User:
    """A signed-in user holding one of the roles."""
    user = require_user(user)
    if user.role not in roles:
        names = _("或").join(str(ROLE_NAMES[role]) for role in roles)
        raise Forbidden(_l("只有%(roles)s可以进行此操作。", roles=names), code="wrong_role")
    return user


def require_organiser(user: User | None) -> User:
    return require_role(user, Role.organiser)


def is_organiser(user: User | None) -> bool:
    return user is not None and user.role is Role.organiser


def owns_exhibitor(user: User | None, exhibitor: Exhibitor) -> bool:
    """The user belongs to the exhibiting organisation."""
    return (
        user is not None
        and user.role is Role.exhibitor
        and user.organisation_id == exhibitor.organisation_id
    )


def require_approved_exhibitor(user: User | None, exhibitor: Exhibitor | None) -> User:
    """The user's organisation is an approved exhibitor of the fair."""
    user = require_role(user, Role.exhibitor)
    if exhibitor is None or not owns_exhibitor(user, exhibitor):
        raise Forbidden(_l("请先申请参展。"), code="not_an_exhibitor")
    if not exhibitor.is_approved:
        raise Forbidden(_l("参展申请尚未通过审核。"), code="not_approved")
    return user


def can_edit_project(user: User | None, project: Project) -> bool:
    return owns_exhibitor(user, project.exhibitor)


def require_project_editor(user: User | None, project: Project) -> User:
    user = require_user(user)
    if not can_edit_project(user, project):
        raise Forbidden(_l("只有项目所属的参展单位可以修改它。"), code="not_yours")
    return user


def can_view_project(user: User | None, project: Project) -> bool:
    """Published projects are public; drafts and withdrawn ones only to their exhibitor."""
    return project.is_published or can_edit_project(user, project) or is_organiser(user)


def catalogue_shows_drafts_of(user: User | None, exhibitor: Exhibitor) -> bool:
    """The catalogue shows everyone published projects, and an exhibitor its own drafts too."""
    return owns_exhibitor(user, exhibitor)


def require_buyer(user: User | None) -> User:
    """Only buyers sign intents: exhibitors, organisers and visitors cannot."""
    user = require_user(user)
    if user.role is not Role.buyer:
        raise Forbidden(_l("只有采购方可以提交签约意向。"), code="wrong_role")
    return user


def require_verified_buyer(user: User | None) -> User:
    """A buyer whose organisation an organiser has verified (for what only such buyers do)."""
    user = require_buyer(user)
    if user.organisation is None or not user.organisation.is_verified:
        raise Forbidden(_l("贵单位尚未通过主办方的核验。"), code="not_verified")
    return user


def require_organisation_verifier(user: User | None) -> User:
    """Organisers verify buyers' organisations, as they approve exhibitors."""
    return require_organiser(user)


def can_view_intent(user: User | None, intent: Intent) -> bool:
    """Its buyer, the exhibitor of its project, and organisers."""
    return (
        is_organiser(user)
        or (user is not None and user.id == intent.buyer_id)
        or owns_exhibitor(user, intent.project.exhibitor)
    )


def require_intent_buyer(user: User | None, intent: Intent) -> User:
    """Only the buyer who signed an intent withdraws it."""
    user = require_user(user)
    if user.id != intent.buyer_id:
        raise Forbidden(_l("只有提交这笔签约意向的采购方可以撤回它。"),
                        code="not_yours")
    return user


def require_deposit_payer(user: User | None, intent: Intent) -> User:
    """Only the buyer who signed an intent pays a deposit on it."""
    user = require_user(user)
    if user.id != intent.buyer_id:
        raise Forbidden(_l("只有提交这笔签约意向的采购方可以支付意向金。"),
                        code="not_yours")
    return user


def require_booth_fee_paid(fair: Fair, exhibitor: Exhibitor) -> None:
    """Where the organiser asks for it, only an exhibitor that paid its booth fee publishes."""
    if fair.booth_fee_required and fair.booth_fee_fen > 0 and not exhibitor.booth_fee_paid:
        raise Forbidden(_l("请先支付展位费再发布项目。"), code="booth_fee_unpaid")


def can_view_payment(user: User | None, payment: Payment) -> bool:
    """A payment is seen by whoever paid it and by organisers."""
    return user is not None and (user.id == payment.payer_id or is_organiser(user))


def require_hall_manager(user: User | None) -> User:
    """Organisers open halls, schedule showcases and put them on air."""
    return require_organiser(user)


def can_see_push_details(user: User | None, project: Project) -> bool:
    """A showcase's push URL is a secret of the organisers and the project's exhibitor."""
    return is_organiser(user) or can_edit_project(user, project)


def require_push_viewer(user: User | None, project: Project) -> User:
    user = require_user(user)
    if not can_see_push_details(user, project):
        raise Forbidden(_l("只有主办方和项目的参展单位可以查看推流信息。"),
                        code="not_yours")
    return user


def require_replay_editor(user: User | None, project: Project) -> User:
    """The project's exhibitor (or an organiser) shows or hides the replays of its showcases."""
    return require_push_viewer(user, project)


def require_chatter(user: User | None) -> User:
    """Anyone may watch a hall; only a signed-in user may chat in it."""
    return require_user(user)


def require_chat_moderator(user: User | None) -> User:
    """Organisers hide chat lines."""
    return require_organiser(user)


# --- Procurement needs (needs/) ------------------------------------------------------------


class Need(Protocol):
    @property
    def buyer_id(self) -> int: ...
    @property
    def is_public(self) -> bool: ...


class NeedResponse(Protocol):
    @property
    def need(self) -> Need: ...
    @property
    def exhibitor(self) -> Exhibitor: ...


def is_verified_buyer(user: User | None) -> bool:
    """A buyer whose organisation the organiser verified (require_verified_buyer lets it by)."""
    return (user is not None and user.role is Role.buyer and user.organisation is not None
            and user.organisation.is_verified)


def can_view_need(user: User | None, need: Need) -> bool:
    """Open and closed needs are public; drafts and withdrawn ones only to their buyer and
    organisers."""
    return need.is_public or is_organiser(user) or (user is not None and user.id == need.buyer_id)


def require_need_buyer(user: User | None, need: Need) -> User:
    """Only the buyer who published a need changes it and decides on its responses."""
    user = require_user(user)
    if user.id != need.buyer_id:
        raise Forbidden(_l("只有发布这条需求的采购方可以这样做。"), code="not_yours")
    return user


def can_view_response(user: User | None, response: NeedResponse) -> bool:
    """A response is seen by the need's buyer, the responding exhibitor and organisers."""
    return (is_organiser(user) or (user is not None and user.id == response.need.buyer_id)
            or owns_exhibitor(user, response.exhibitor))


def require_responder(user: User | None, response: NeedResponse) -> User:
    """Only the responding exhibitor edits its response."""
    user = require_user(user)
    if not owns_exhibitor(user, response.exhibitor):
        raise Forbidden(_l("只有提交这条响应的参展单位可以修改它。"), code="not_yours")
    return user
