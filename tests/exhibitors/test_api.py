"""Exhibitor and project API: the path from application to a published project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from exhibitors.models import Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair


def test_exhibitor_applies_is_approved_and_publishes(
    client: FlaskClient, fair: Fair, organiser: User, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    exhibitor_user = make_user(Role.exhibitor)
    headers = token_for(exhibitor_user)
    applied = client.post(f"/api/v1/fairs/{fair.id}/exhibitors", headers=headers)
    assert applied.status_code == 201
    assert applied.json["status"] == "pending"

    draft = {"title": "蜀绣体验课", "category": "training", "price": "8800.00"}
    refused = client.post(f"/api/v1/fairs/{fair.id}/projects", json=draft, headers=headers)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "not_approved"

    approved = client.post(f"/api/v1/exhibitors/{applied.json['id']}/approve",
                           headers=token_for(organiser))
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved"

    created = client.post(f"/api/v1/fairs/{fair.id}/projects", json=draft, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["status"] == "draft"
    assert created.json["price"] == "8800.00"
    project_id = created.json["id"]
    assert client.get(f"/api/v1/projects/{project_id}").status_code == 404

    published = client.post(f"/api/v1/projects/{project_id}/publish", headers=headers)
    assert published.json["status"] == "published"
    assert client.get(f"/api/v1/projects/{project_id}").json["title"] == "蜀绣体验课"


PROJECT = {"title": "川剧变脸专场", "category": "performance", "price": "120000.00"}


def test_buyer_cannot_create_a_project(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    response = client.post(f"/api/v1/fairs/{fair.id}/projects", json=PROJECT,
                           headers=token_for(make_user(Role.buyer)))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "wrong_role"


def test_buyer_cannot_apply_as_exhibitor(
    client: FlaskClient, fair: Fair, make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    response = client.post(f"/api/v1/fairs/{fair.id}/exhibitors",
                           headers=token_for(make_user(Role.buyer)))
    assert response.status_code == 403


def test_exhibitor_of_another_fair_cannot_create_here(
    client: FlaskClient, make_fair: Callable[..., Fair], make_exhibitor: Callable[..., Any],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    first, second = make_fair(), make_fair(name="第二届采购大会")
    _, user = make_exhibitor(first)
    response = client.post(f"/api/v1/fairs/{second.id}/projects", json=PROJECT,
                           headers=token_for(user))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "not_an_exhibitor"


def test_rejected_exhibitor_cannot_create(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any], organiser: User,
    token_for: Callable[[User], dict[str, str]],
) -> None:
    exhibitor, user = make_exhibitor(fair, approved=False)
    refused = client.post(f"/api/v1/exhibitors/{exhibitor.id}/reject", json={},
                          headers=token_for(organiser))
    assert refused.status_code == 422
    assert "reason" in refused.json["error"]["fields"]
    rejected = client.post(f"/api/v1/exhibitors/{exhibitor.id}/reject",
                           json={"reason": "材料不全"}, headers=token_for(organiser))
    assert rejected.json["rejection_reason"] == "材料不全"
    response = client.post(f"/api/v1/fairs/{fair.id}/projects", json=PROJECT,
                           headers=token_for(user))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "not_approved"


def test_exhibitor_cannot_edit_or_publish_another_exhibitors_project(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any],
    make_project: Callable[..., Project], token_for: Callable[[User], dict[str, str]],
) -> None:
    project = make_project(fair)
    _, intruder = make_exhibitor(fair, province="CN-BJ")
    headers = token_for(intruder)
    edited = client.patch(f"/api/v1/projects/{project.id}", json={"title": "被篡改"},
                          headers=headers)
    assert edited.status_code == 403
    assert edited.json["error"]["code"] == "not_yours"
    assert client.post(f"/api/v1/projects/{project.id}/withdraw",
                       headers=headers).status_code == 403
    assert client.get(f"/api/v1/projects/{project.id}").json["title"] == project.title


def test_draft_is_hidden_from_others_but_editable_by_its_exhibitor(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any],
    make_project: Callable[..., Project], make_user: Callable[..., User],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    _, owner = make_exhibitor(fair)
    draft = make_project(fair, user=owner, publish=False)
    assert client.get(f"/api/v1/projects/{draft.id}").status_code == 404
    buyer_headers = token_for(make_user(Role.buyer))
    assert client.get(f"/api/v1/projects/{draft.id}", headers=buyer_headers).status_code == 404
    assert client.patch(f"/api/v1/projects/{draft.id}", json={"title": "x" * 3},
                        headers=buyer_headers).status_code == 404
    edited = client.patch(f"/api/v1/projects/{draft.id}",
                          json={"price": "99.50", "tags": ["非遗", "川剧"]},
                          headers=token_for(owner))
    assert edited.status_code == 200
    assert edited.json["price"] == "99.50"
    assert edited.json["tags"] == ["非遗", "川剧"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": "music"}, "category"),
        ({"price": 120000}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "１２"}, "price"),
        ({"title": ""}, "title"),
        ({"tags": ["x" * 31]}, "tags"),
    ],
)
def test_bad_projects_are_refused(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any],
    token_for: Callable[[User], dict[str, str]], changes: dict[str, Any], field: str,
) -> None:
    _, user = make_exhibitor(fair)
    response = client.post(f"/api/v1/fairs/{fair.id}/projects", json={**PROJECT, **changes},
                           headers=token_for(user))
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Project)) == 0


def test_description_is_sanitised(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    _, user = make_exhibitor(fair)
    description = (
        "**蜀绣**<script>alert(1)</script><img src=x onerror=alert(2)>"
        "<a href=\"javascript:alert(3)\">链接</a><iframe src=//evil></iframe>"
    )
    response = client.post(f"/api/v1/fairs/{fair.id}/projects",
                           json={**PROJECT, "description": description}, headers=token_for(user))
    html = response.json["description_html"]
    assert "<strong>蜀绣</strong>" in html
    for dangerous in ("<script", "onerror", "javascript:", "<iframe", "alert(1)"):
        assert dangerous not in html


def test_withdrawn_project_leaves_the_public_view(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., Any],
    make_project: Callable[..., Project], token_for: Callable[[User], dict[str, str]],
) -> None:
    _, owner = make_exhibitor(fair)
    project = make_project(fair, user=owner)
    headers = token_for(owner)
    assert client.post(f"/api/v1/projects/{project.id}/withdraw",
                       headers=headers).json["status"] == "withdrawn"
    assert client.get(f"/api/v1/projects/{project.id}").status_code == 404
    assert client.post(f"/api/v1/projects/{project.id}/publish", headers=headers).status_code == 409
