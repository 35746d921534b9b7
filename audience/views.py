"""Pages: 我的收藏, share links, the portrait (organiser and exhibitor), one's own data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from audience import insights, recording, service
from fair import permissions
from fair import service as fair_service
from fair.auth import current_user
from fair.i18n import category_label, province_label

bp = Blueprint("audience_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/audience")


@bp.get("/me/favourites")
def favourites() -> str:
    """我的收藏: the projects this user (or this browser) keeps."""
    found = service.list_favourites(actor=recording.current_actor())
    return render_template("audience/favourites.html", favourites=found)


@bp.get("/s/<code>")
def follow_share(code: str) -> BaseResponse:
    """A share link: counted for its sharer and project, then on to the project's page."""
    followed = service.follow_share(code, actor=recording.current_actor())
    if followed.visit is not None and recording.recording_actor() is not None:
        recording.use_visitor()
        recording.record(followed.visit)
    return redirect(url_for("exhibitor_pages.project", project_id=followed.share.project_id))


@bp.get("/organiser/insights", defaults={"fair_id": None})
@bp.get("/fairs/<int:fair_id>/insights")
def fair_insights(fair_id: int | None) -> str:
    """The portrait (画像) of the fair for organisers: charts, each with its table and CSV."""
    fair = fair_service.access_current_fair() if fair_id is None else fair_service.access_fair(
        fair_id)
    figures = insights.fair_insights(fair, user=current_user())
    return render_template("audience/insights.html", fair=fair, figures=figures,
                           sections=_sections(figures))


@dataclass(frozen=True)
class Section:
    """One figure of the portrait: its chart type, and the table it is drawn from."""

    id: str
    title: str
    chart: str
    columns: list[str]
    rows: list[list[Any]]


def _sections(figures: dict[str, Any]) -> list[Section]:
    def rows(items: list[dict[str, Any]], *keys: str) -> list[list[Any]]:
        return [[item[key] for key in keys] for item in items]

    def named(items: list[dict[str, Any]], label: Any) -> list[dict[str, Any]]:
        return [{**item, "label": label(item)} for item in items]

    steps = [_("浏览"), _("收藏"), _("签约意向")]
    visits, searches = figures["visits"], figures["searches"]
    projects, funnel, intents = figures["projects"], figures["funnel"], figures["intents"]
    halls = named(visits["by_hall"], lambda item: item["name"] if item["hall_id"]
                  else _("文化超市"))
    categories = named(funnel["by_category"], lambda item: category_label(item["key"])
                       if item["key"] else _("未知"))
    provinces = named(funnel["by_province"], lambda item: province_label(item["key"])
                      if item["key"] else _("匿名访客"))
    signed_halls = named(intents["by_hall"], lambda item: item["name"] or _("展厅外"))
    return [
        Section("visits-by-day", _("每日观展人次"), "line", [_("日期"), _("人次")],
                rows(visits["by_day"], "day", "visits")),
        Section("visits-by-hall", _("各展厅人次"), "bar", [_("展厅"), _("人次")],
                rows(halls, "label", "visits")),
        Section("top-searches", _("热门搜索"), "bar", [_("搜索词"), _("次数"), _("无结果")],
                rows(searches["top"], "terms", "searches", "zero_results")),
        Section("zero-searches", _("无结果的搜索（未满足的需求）"), "bar",
                [_("搜索词"), _("无结果")], rows(searches["zero_results"], "terms",
                                                  "zero_results")),
        Section("most-viewed", _("浏览最多的项目"), "bar", [_("项目"), _("浏览")],
                rows(projects["most_viewed"], "title", "count")),
        Section("most-favourited", _("收藏最多的项目"), "bar", [_("项目"), _("收藏")],
                rows(projects["most_favourited"], "title", "count")),
        Section("most-signed", _("签约意向最多的项目"), "bar", [_("项目"), _("签约意向")],
                rows(projects["most_signed"], "title", "count")),
        Section("funnel-category", _("转化：按类别"), "bar", [_("类别"), *steps],
                rows(categories, "label", "view", "favourite", "intent")),
        Section("funnel-province", _("转化：按采购方省份"), "bar", [_("省份"), *steps],
                rows(provinces, "label", "view", "favourite", "intent")),
        Section("intents-by-hall", _("各展厅签约意向"), "bar",
                [_("展厅"), _("人次"), _("签约意向")],
                rows(signed_halls, "label", "visits", "intents")),
        Section("intents-by-showcase", _("各场直播的签约意向"), "bar",
                [_("直播项目"), _("人次"), _("签约意向")],
                rows(intents["by_showcase"], "project", "visits", "intents")),
    ]


@bp.get("/portal/insights")
def portal_insights() -> str:
    """The funnel of the exhibitor's own projects; cells of fewer than three buyers hidden."""
    fair = fair_service.access_current_fair()
    figures = insights.exhibitor_insights(fair, user=current_user())
    steps = [_("浏览"), _("收藏"), _("签约意向")]
    provinces = [{**row, "label": province_label(row["key"]) if row["key"] else _("匿名访客")}
                 for row in figures["by_province"]]
    sections = [
        Section("own-by-project", _("按项目"), "bar", [_("项目"), *steps],
                [[row["title"], *(row[kind] for kind in insights.FUNNEL)]
                 for row in figures["by_project"]]),
        Section("own-by-province", _("按采购方省份"), "bar", [_("省份"), *steps],
                [[row["label"], *(row[kind] for kind in insights.FUNNEL)] for row in provinces]),
    ]
    return render_template("audience/portal_insights.html", fair=fair, figures=figures,
                           hidden=insights.HIDDEN, sections=sections)


@bp.get("/me/behaviour.json")
def download_behaviour() -> Response:
    """One's own behaviour data as a JSON file (PIPL)."""
    data = service.own_data(current_user(), visitor=recording.visitor_id())
    return Response(json.dumps(data, ensure_ascii=False, indent=1),
                    mimetype="application/json",
                    headers={"Content-Disposition": "attachment; filename=behaviour.json"})


@bp.post("/me/behaviour/delete")
def delete_behaviour() -> BaseResponse:
    """Delete one's own behaviour data (PIPL)."""
    permissions.require_user(current_user())
    recording.buffer().flush()
    service.delete_own_data(current_user(), visitor=recording.visitor_id())
    flash(_("已删除您的浏览行为数据。"), "success")
    return redirect(url_for(".favourites"))
