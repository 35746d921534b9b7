"""The fair's own pages: home, the site-wide template context and vendored browser scripts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from flask import Blueprint, Flask, abort, current_app, render_template, send_from_directory
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from fair import i18n, permissions, reference, service
from fair.auth import current_user
from fair.models import Fair

bp = Blueprint("pages", __name__)

NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
#: The only files of node_modules a browser may fetch, by their path inside node_modules.
VENDOR_FILES = frozenset({
    "socket.io-client/dist/socket.io.min.js",
    "echarts/dist/echarts.min.js",
    "hls.js/dist/hls.min.js",
})
EXTENSION_KEY = "fair.pages"


class CatalogueFigures(Protocol):
    """A fair's headline catalogue numbers (exhibitors.service.FairFigures)."""

    @property
    def exhibitors(self) -> int: ...
    @property
    def projects(self) -> int: ...
    @property
    def provinces(self) -> int: ...


class ProgrammeEntry(Protocol):
    """A hall and what it shows now or next (livehalls.service.ProgrammeItem)."""

    @property
    def hall_id(self) -> int: ...
    @property
    def hall_name(self) -> str: ...
    @property
    def project_id(self) -> int | None: ...
    @property
    def project_title(self) -> str: ...
    @property
    def project_title_en(self) -> str: ...
    @property
    def on_air(self) -> bool: ...
    @property
    def starts_at(self) -> dt.datetime | None: ...


@dataclass(frozen=True)
class Readers:
    """What the home page reads of the domain packages, handed over by the app: the core of
    fair imports none of them."""

    #: Approved exhibitors, published projects and their provinces.
    catalogue: Callable[[Fair], CatalogueFigures]
    #: How many live halls the fair has.
    halls: Callable[[Fair], int]
    #: Each hall with what is on air, or next.
    programme: Callable[[Fair], Sequence[ProgrammeEntry]] = lambda fair: ()


def init_app(app: Flask, *, readers: Readers) -> None:
    """Give the pages the readers of the domain packages' figures."""
    app.extensions[EXTENSION_KEY] = readers


@bp.app_context_processor
def site_context() -> dict[str, object]:
    """What base.html needs on every page: who is signed in, the fair, which pages exist."""
    return {
        "viewer": current_user(),
        "site_fair": service.current_fair(),
        "has_page": lambda endpoint: endpoint in current_app.view_functions,
    }


@bp.get("/")
def home() -> str:
    fair = service.current_fair()
    if fair is None:
        return render_template("fair/home.html", fair=None, figures=None, halls=0)
    readers: Readers = current_app.extensions[EXTENSION_KEY]
    return render_template("fair/home.html", fair=fair, halls=readers.halls(fair),
                           figures=readers.catalogue(fair), programme=readers.programme(fair),
                           replay=fair.name == reference.REFERENCE_EVENT_NAME)


@bp.get("/dashboard", defaults={"fair_id": None})
@bp.get("/fairs/<int:fair_id>/dashboard")
def dashboard(fair_id: int | None) -> str:
    """The organiser's big screen (数据大屏): a shell that dashboard.js fills from the API and
    the /live socket, so that this package needs nothing from deals or livehalls."""
    permissions.require_organiser(current_user())
    fair = service.access_current_fair() if fair_id is None else service.access_fair(fair_id)
    return render_template("fair/dashboard.html", fair=fair, config=_dashboard_config(fair))


def _dashboard_config(fair: Fair) -> dict[str, object]:
    return {
        "fair_id": fair.id,
        "locale": i18n.current_locale(),
        "timezone": current_app.config["BABEL_DEFAULT_TIMEZONE"],
        "provinces": {code: i18n.province_label(code) for code in reference.PROVINCES},
        "categories": {code: i18n.category_label(code) for code in reference.CATEGORIES},
        "strings": {
            "connecting": _("连接中"),
            "live": _("实时"),
            "stale": _("数据滞后"),
            "reconnecting": _("正在重新连接"),
            "offline": _("网络已断开"),
            "refused": _("仅主办方可以查看数据大屏"),
            "secured": _("已付意向金"),
            "pause": _("暂停实时更新"),
            "resume": _("恢复实时更新"),
            "announce": _("全场签约意向 %(amount)s 万元，共 %(count)s 笔。",
                          amount="__AMOUNT__", count="__COUNT__"),
            "chart": _("%(title)s：%(items)s。", title="__TITLE__", items="__ITEMS__"),
            "chart_empty": _("%(title)s：暂无数据。", title="__TITLE__"),
            "chart_item": _("%(name)s %(amount)s 万元（%(count)s 笔）", name="__NAME__",
                            amount="__AMOUNT__", count="__COUNT__"),
            "separator": _("；"),
        },
    }


@bp.get("/vendor/<path:path>")
def vendor(path: str) -> Response:
    """Serve an allowed browser library straight from node_modules (never copied here)."""
    if path not in VENDOR_FILES:
        abort(404)
    return send_from_directory(NODE_MODULES, path, max_age=86_400)
