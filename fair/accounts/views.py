"""Sign-in, sign-out and registration pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from fair import auth
from fair.accounts import limits, service
from fair.accounts.forms import RegisterForm, SignInForm
from fair.accounts.models import Role
from fair.errors import FairError

bp = Blueprint("account_pages", __name__, template_folder="templates")

#: Where each role lands after signing in, when no page asked for the sign-in.
LANDING = {
    Role.exhibitor: "exhibitor_pages.portal",
    Role.organiser: "exhibitor_pages.approvals",
    Role.buyer: "exhibitor_pages.catalogue",
}


@bp.route("/sign-in", methods=["GET", "POST"])
@limits.sign_in_limited
def sign_in() -> str | Response:
    form = SignInForm()
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.email.data or "", form.password.data or "")
        except FairError as error:
            limits.note_refused_sign_in()
            form.show_refusal(error)
        else:
            auth.sign_in(user)
            return redirect(_next_page() or url_for(LANDING[user.role]))
    return render_template("accounts/sign_in.html", form=form)


@bp.post("/sign-out")
def sign_out() -> Response:
    auth.sign_out()
    flash(_("您已退出登录。"), "success")
    return redirect(url_for("pages.home"))


@bp.route("/register", methods=["GET", "POST"])
@limits.registration_limited
def register() -> str | Response:
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = service.register_user(
                email=form.email.data or "",
                password=form.password.data or "",
                name=form.name.data or "",
                role=Role(form.role.data),
                organisation_name=form.organisation_name.data or "",
                province=form.province.data or "",
                phone=form.phone.data or "",
            )
        except FairError as error:
            form.show_refusal(error)
        else:
            auth.sign_in(user)
            flash(_("注册成功，欢迎 %(name)s！", name=user.name), "success")
            return redirect(url_for(LANDING[user.role]))
    return render_template("accounts/register.html", form=form)


def _next_page() -> str | None:
    """The page that asked for the sign-in, if it is one of ours (no open redirect)."""
    target = request.args.get("next", "")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None  # a line break would split the Location header
    parts = urlsplit(target)
    # "//host" and "/\\host" are other sites to a browser.
    if not target.startswith("/") or target[1:2] in ("/", "\\") or parts.scheme or parts.netloc:
        return None
    return target
