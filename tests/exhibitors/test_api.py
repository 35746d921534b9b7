"""Exhibitor and project API: the path from application to a published project."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from fair.accounts.models import Role, User
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
