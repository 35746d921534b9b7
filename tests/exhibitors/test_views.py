"""Pages: the catalogue, the project page, the exhibitor's portal and the approval page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from exhibitors.models import (
    Exhibitor,
    ExhibitorStatus,
    Media,
    MediaKind,
    Project,
    ProjectStatus,
)
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair
from tests.pages import csrf_token, post_form, sign_in

CARD_TITLE = re.compile(r'<h3 class="card-title">([^<]+)</h3>')
#: An event handler attribute inside a real tag (escaped text such as &lt;img onerror&gt; is
#: harmless and may stay).
HANDLER_IN_TAG = re.compile(r"<[a-z][^<>]*\son[a-z]+\s*=", re.IGNORECASE)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 40, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_media(project: Project, kind: MediaKind, sha: str) -> None:
    db.session.add(Media(project_id=project.id, kind=kind, sha256=sha * 64,
                         content_type="image/png", size=100, width=64, height=48))
    db.session.commit()


# --- The catalogue ------------------------------------------------------------------------


def test_catalogue_finds_a_project_by_a_chinese_word(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    make_project(fair, title="蜀绣体验课", category="training", summary="针法入门")
    make_project(fair, title="川剧变脸专场演出", summary="经典折子戏")

    page = client.get("/catalogue?q=蜀绣")

    assert page.status_code == 200
    assert CARD_TITLE.findall(page.text) == ["蜀绣体验课"]
    assert "共 1 个项目" in page.text


def test_catalogue_in_english_names_categories_and_provinces_in_english(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    make_project(fair, province="CN-XZ", category="intangible-heritage", title="藏戏展演")

    page = client.get(f"/fairs/{fair.id}/projects?lang=en")

    assert '<html lang="en">' in page.text
    assert "Intangible heritage" in page.text
    assert "Tibet" in page.text
    assert "1 projects" in page.text


def test_catalogue_facets_filter_and_keep_the_search(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, user = make_exhibitor(fair, province="CN-CQ")
    make_project(fair, user=user, title="非遗竹编体验", category="training")
    make_project(fair, user=user, title="非遗竹编展览", category="exhibition")

    page = client.get("/catalogue?q=非遗")
    link = re.search(r'href="([^"]*category=training[^"]*)"', page.text)
    assert link is not None
    filtered = client.get(link.group(1).replace("&amp;", "&"))

    assert CARD_TITLE.findall(filtered.text) == ["非遗竹编体验"]
    assert 'value="非遗"' in filtered.text
    by_province = client.get("/catalogue?province=CN-CQ&min_price=100000.00&max_price=200000.00")
    assert len(CARD_TITLE.findall(by_province.text)) == 2


def test_catalogue_pages_through_the_results(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, user = make_exhibitor(fair)
    for number in range(26):
        make_project(fair, user=user, title=f"熊猫文创第{number}号")

    first = client.get("/catalogue?sort=newest")
    second = client.get("/catalogue?sort=newest&page=2")

    assert len(CARD_TITLE.findall(first.text)) == 24
    assert len(CARD_TITLE.findall(second.text)) == 2
    assert 'href="/catalogue?sort=newest&amp;page=2"' in first.text
    assert not set(CARD_TITLE.findall(first.text)) & set(CARD_TITLE.findall(second.text))


@pytest.mark.parametrize("query", ["page=abc", "page=-3", "sort=drop", "min_price=1e9",
                                   "category=nope", "province=CN-ZZ", "max_price=12,5"])
def test_catalogue_ignores_filters_it_cannot_read(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project], query: str
) -> None:
    make_project(fair)
    page = client.get(f"/catalogue?{query}")
    assert page.status_code == 200
    assert len(CARD_TITLE.findall(page.text)) == 1


def test_catalogue_hides_drafts_from_visitors(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    make_project(fair, title="未发布的草稿项目", publish=False)
    assert CARD_TITLE.findall(client.get("/catalogue").text) == []


def test_cards_show_the_first_images_thumbnail(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair)
    add_media(project, MediaKind.image, "a")
    assert f'src="/media/{"a" * 64}/thumb"' in client.get("/catalogue").text


# --- The project page ---------------------------------------------------------------------


def test_project_page_shows_gallery_video_brochure_price_and_organisation(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair, price_fen=12_345_678, province="CN-SC",
                           tags=("非遗", "川剧"))
    add_media(project, MediaKind.image, "a")
    add_media(project, MediaKind.image, "b")
    add_media(project, MediaKind.video, "c")
    add_media(project, MediaKind.pdf, "d")

    page = client.get(f"/projects/{project.id}").text

    assert f'src="/media/{"a" * 64}"' in page
    assert f'src="/media/{"b" * 64}/thumb"' in page
    assert f'<video controls preload="metadata" playsinline src="/media/{"c" * 64}"' in page
    assert f'href="/media/{"d" * 64}"' in page
    assert "¥123,456.78" in page
    assert project.exhibitor.organisation.name in page
    assert "四川省" in page
    assert '<span class="tag">非遗</span>' in page


def test_project_page_keeps_no_script_from_the_description(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair, description=(
        "**好戏**<script>alert('x')</script><img src=x onerror=alert('y')>"
        "[点我](javascript:alert('z')) <a href=\"#\" onclick=\"alert('w')\">链接</a>"
    ))

    page = client.get(f"/projects/{project.id}").text

    assert "<strong>好戏</strong>" in page
    assert "<script>alert" not in page
    assert HANDLER_IN_TAG.search(page) is None
    assert re.search(r"<[^<>]*javascript:", page, re.IGNORECASE) is None


def test_project_page_of_a_draft_is_hidden_from_visitors(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair, publish=False)
    page = client.get(f"/projects/{project.id}")
    assert page.status_code == 404
    assert "页面不存在" in page.text


def test_project_page_asks_visitors_to_sign_in_to_sign_an_intent(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project]
) -> None:
    project = make_project(fair)
    page = client.get(f"/projects/{project.id}").text
    assert f'href="/sign-in?next=/projects/{project.id}"' in page


# --- The exhibitor's portal ---------------------------------------------------------------


def test_portal_sends_visitors_to_sign_in(client: FlaskClient, fair: Fair) -> None:
    response = client.get("/portal")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=/portal"


def test_portal_is_for_exhibitors_only(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User]
) -> None:
    sign_in(client, make_user(Role.buyer))
    page = client.get("/portal")
    assert page.status_code == 403
    assert "无权访问" in page.text


def test_exhibitor_applies_from_the_portal(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.exhibitor)
    sign_in(client, user)
    assert "申请参展" in client.get("/portal").text
    assert client.post("/portal/apply").status_code == 400

    applied = post_form(client, "/portal/apply")

    assert applied.status_code == 302
    exhibitor = db.session.scalar(select(Exhibitor).where(
        Exhibitor.organisation_id == user.organisation_id))
    assert exhibitor is not None
    assert exhibitor.status is ExhibitorStatus.pending
    assert "申请审核中" in client.get("/portal").text


def project_form(**changes: str) -> dict[str, str]:
    return {"title": "蜀绣非遗体验课", "category": "training", "price": "8800.50",
            "summary": "针法入门", "description": "## 课程\n\n- 平针", "tags": "非遗，蜀绣 亲子",
            **changes}


def test_unapproved_exhibitor_is_told_why_it_cannot_create_a_project(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]]
) -> None:
    _, user = make_exhibitor(fair, approved=False)
    sign_in(client, user)

    page = post_form(client, "/portal/projects/new", project_form(), follow_redirects=True)

    assert page.status_code == 200
    assert "参展申请正在审核" in page.text
    assert db.session.scalar(select(Project)) is None


def test_approved_exhibitor_creates_edits_and_publishes_a_project(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]]
) -> None:
    _, user = make_exhibitor(fair)
    sign_in(client, user)

    created = post_form(client, "/portal/projects/new", project_form())
    assert created.status_code == 302
    project = db.session.scalars(select(Project)).one()
    assert created.headers["Location"] == f"/portal/projects/{project.id}"
    assert (project.price_fen, project.status) == (880_050, ProjectStatus.draft)
    assert project.tag_list == ["非遗", "蜀绣", "亲子"]
    edit_page = client.get(f"/portal/projects/{project.id}").text
    assert 'value="8800.50"' in edit_page

    post_form(client, f"/portal/projects/{project.id}", project_form(title="蜀绣大师课"))
    post_form(client, f"/portal/projects/{project.id}/publish")

    db.session.refresh(project)
    assert project.title == "蜀绣大师课"
    assert project.status is ProjectStatus.published
    assert CARD_TITLE.findall(client.get("/catalogue?q=大师").text) == ["蜀绣大师课"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"price": "0"}, "请填写大于 0 的金额"),
    ({"price": "12.345"}, "请填写大于 0 的金额"),
    ({"price": "12,50"}, "请填写大于 0 的金额"),
    ({"price": "100000000.01"}, "金额最多 100,000,000.00 元"),
    ({"title": "x"}, "请填写 2 到 200 个字"),
    ({"category": "magic"}, "不是有效的选择"),
])
def test_project_form_refusals_are_shown_and_nothing_is_saved(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    changes: dict[str, str], message: str,
) -> None:
    _, user = make_exhibitor(fair)
    sign_in(client, user)
    page = post_form(client, "/portal/projects/new", project_form(**changes))
    assert message in page.text
    assert db.session.scalar(select(Project)) is None


def test_exhibitor_cannot_edit_another_exhibitors_project(
    client: FlaskClient, fair: Fair, make_project: Callable[..., Project],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    project = make_project(fair, title="别人的项目")
    _, intruder = make_exhibitor(fair)
    sign_in(client, intruder)

    assert client.get(f"/portal/projects/{project.id}").status_code == 403
    refused = post_form(client, f"/portal/projects/{project.id}", project_form(title="改掉"))
    assert refused.status_code == 403
    db.session.refresh(project)
    assert project.title == "别人的项目"


def test_exhibitor_uploads_an_image_from_the_project_page(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project],
) -> None:
    _, user = make_exhibitor(fair)
    project = make_project(fair, user=user, publish=False)
    sign_in(client, user)

    uploaded = post_form(client, f"/portal/projects/{project.id}/media",
                         {"file": (io.BytesIO(png_bytes()), "海报.png")},
                         content_type="multipart/form-data")

    assert uploaded.status_code == 302
    assert uploaded.headers["Location"] == f"/portal/projects/{project.id}#media"
    item = db.session.scalars(select(Media)).one()
    assert (item.kind, item.original_name) == (MediaKind.image, "海报.png")
    assert f"/media/{item.sha256}/thumb" in client.get(f"/portal/projects/{project.id}").text


def test_an_html_page_uploaded_as_an_image_is_refused_with_a_message(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project],
) -> None:
    _, user = make_exhibitor(fair)
    project = make_project(fair, user=user, publish=False)
    sign_in(client, user)

    refused = post_form(client, f"/portal/projects/{project.id}/media",
                        {"file": (io.BytesIO(b"<html><script>alert(1)</script>"), "a.png")},
                        content_type="multipart/form-data", follow_redirects=True)

    assert "只接受 JPEG、PNG、WebP 图片" in refused.text
    assert db.session.scalar(select(Media)) is None


# --- The organiser's approval page --------------------------------------------------------


def test_organiser_approves_a_pending_application(
    client: FlaskClient, fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    pending, _ = make_exhibitor(fair, approved=False)
    sign_in(client, organiser)

    page = client.get("/organiser/exhibitors")
    assert pending.organisation.name in page.text
    assert client.post(f"/organiser/exhibitors/{pending.id}/approve").status_code == 400

    approved = post_form(client, f"/organiser/exhibitors/{pending.id}/approve")

    assert approved.status_code == 302
    db.session.refresh(pending)
    assert pending.status is ExhibitorStatus.approved
    row = f'id="exhibitor-{pending.id}"'
    assert row not in client.get("/organiser/exhibitors").text
    assert row in client.get("/organiser/exhibitors?status=approved").text


def test_organiser_rejects_an_application(
    client: FlaskClient, fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    pending, user = make_exhibitor(fair, approved=False)
    sign_in(client, organiser)
    page = client.get("/organiser/exhibitors").text
    assert f'id="reason-{pending.id}"' in page  # the reason is asked for beside the button
    without = post_form(client, f"/organiser/exhibitors/{pending.id}/reject",
                        {"reason": "  "}, follow_redirects=True)
    assert "请写明拒绝的理由" in without.text
    db.session.refresh(pending)
    assert pending.status is ExhibitorStatus.pending  # nothing changed
    post_form(client, f"/organiser/exhibitors/{pending.id}/reject",
              {"reason": "申报材料不全，请补充后重新申请。"})
    db.session.refresh(pending)
    assert pending.status is ExhibitorStatus.rejected
    assert pending.rejection_reason == "申报材料不全，请补充后重新申请。"
    # The exhibitor reads why, and is not offered a form that would be refused.
    sign_in(client, user)
    assert "申报材料不全，请补充后重新申请。" in client.get("/portal").text
    new = client.get("/portal/projects/new", follow_redirects=True)
    assert "参展申请未通过，不能新建项目" in new.text
    assert 'name="title"' not in new.text


def test_a_pending_exhibitor_is_told_to_wait_instead_of_shown_the_project_form(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    _, user = make_exhibitor(fair, approved=False)
    sign_in(client, user)
    new = client.get("/portal/projects/new", follow_redirects=True)
    assert "参展申请正在审核" in new.text
    assert 'name="title"' not in new.text


def test_approvals_search_filter_page_and_approve_in_bulk(
    client: FlaskClient, fair: Fair, organiser: User,
    make_exhibitor: Callable[..., tuple[Exhibitor, User]],
) -> None:
    tibet = [make_exhibitor(fair, approved=False, province="CN-XZ")[0] for _ in range(3)]
    sichuan = [make_exhibitor(fair, approved=False)[0] for _ in range(52)]
    sign_in(client, organiser)
    first = client.get("/organiser/exhibitors").text
    assert first.count('name="ids"') == 50  # one page of 50
    assert "第 1 / 2 页" in first
    assert client.get("/organiser/exhibitors?page=2").text.count('name="ids"') == 5
    filtered = client.get("/organiser/exhibitors?province=CN-XZ").text
    assert filtered.count('name="ids"') == 3
    named = client.get("/organiser/exhibitors",
                       query_string={"q": sichuan[7].organisation.name}).text
    assert f'id="exhibitor-{sichuan[7].id}"' in named
    assert named.count('name="ids"') == 1

    approved = post_form(client, "/organiser/exhibitors/approve?province=CN-XZ",
                         {"ids": [str(exhibitor.id) for exhibitor in [*tibet, sichuan[0]]]})
    assert approved.status_code == 302
    assert "province=CN-XZ" in approved.headers["Location"]
    for exhibitor in [*tibet, sichuan[0]]:
        db.session.refresh(exhibitor)
        assert exhibitor.status is ExhibitorStatus.approved
    db.session.refresh(sichuan[1])
    assert sichuan[1].status is ExhibitorStatus.pending
    # Rejecting an approved exhibitor is confirmed in the browser first.
    again = client.get("/organiser/exhibitors?status=approved&province=CN-XZ").text
    assert again.count("data-confirm=") == 3


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_approval_page_is_for_organisers_only(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], role: Role,
) -> None:
    pending, _ = make_exhibitor(fair, approved=False)
    sign_in(client, make_user(role))

    assert client.get("/organiser/exhibitors").status_code == 403
    assert post_form(client, f"/organiser/exhibitors/{pending.id}/approve").status_code == 403
    db.session.refresh(pending)
    assert pending.status is ExhibitorStatus.pending


def test_approval_page_sends_visitors_to_sign_in(client: FlaskClient, fair: Fair) -> None:
    response = client.get("/organiser/exhibitors")
    assert response.headers["Location"] == "/sign-in?next=/organiser/exhibitors"


def test_exhibitor_deletes_an_uploaded_file(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project],
) -> None:
    _, user = make_exhibitor(fair)
    project = make_project(fair, user=user, publish=False)
    sign_in(client, user)
    post_form(client, f"/portal/projects/{project.id}/media",
              {"file": (io.BytesIO(png_bytes()), "海报.png")}, content_type="multipart/form-data")
    item = db.session.scalars(select(Media)).one()

    deleted = post_form(client, f"/portal/media/{item.id}/delete")

    assert deleted.headers["Location"] == f"/portal/projects/{project.id}#media"
    db.session.expire_all()
    assert db.session.scalar(select(Media)) is None


def test_exhibitor_cannot_delete_another_exhibitors_file(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project],
) -> None:
    project = make_project(fair)
    add_media(project, MediaKind.image, "a")
    _, intruder = make_exhibitor(fair)
    sign_in(client, intruder)
    item = db.session.scalars(select(Media)).one()

    assert post_form(client, f"/portal/media/{item.id}/delete").status_code == 403
    assert db.session.scalar(select(Media)) is not None


def test_a_file_over_its_kinds_limit_is_refused_from_the_page_before_it_is_read(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project],
) -> None:
    _, user = make_exhibitor(fair)
    project = make_project(fair, user=user, publish=False)
    sign_in(client, user)

    # Encoded in memory: the test client would spool a large body to a file it never closes.
    boundary, body = encode_multipart({
        "file": FileStorage(io.BytesIO(b"\xff\xd8\xff\xe0" + bytes(16 * 2**20)), "a.jpg"),
        "csrf_token": csrf_token(client)})
    refused = client.post(f"/portal/projects/{project.id}/media", data=body,
                          content_type=f"multipart/form-data; boundary={boundary}")

    assert refused.status_code == 413
    assert "文件过大" in refused.text
    assert db.session.scalar(select(Media)) is None
