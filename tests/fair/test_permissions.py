"""The one module that decides who may do what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from exhibitors.models import Project
from fair import permissions
from fair.accounts.models import Role, User
from fair.errors import Forbidden, Unauthorized
from fair.models import Fair


def test_nobody_signed_in_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        permissions.require_user(None)
    with pytest.raises(Unauthorized):
        permissions.require_organiser(None)


@pytest.mark.parametrize("role", [Role.buyer, Role.exhibitor])
def test_only_organisers_pass_require_organiser(make_user: Callable[..., User], role: Role
                                                ) -> None:
    with pytest.raises(Forbidden):
        permissions.require_organiser(make_user(role))


def test_project_visibility_and_editing(
    fair: Fair, make_exhibitor: Callable[..., Any], make_project: Callable[..., Project],
    make_user: Callable[..., User], organiser: User,
) -> None:
    _, owner = make_exhibitor(fair)
    _, other = make_exhibitor(fair)
    draft = make_project(fair, user=owner, publish=False)
    buyer = make_user(Role.buyer)
    assert permissions.can_view_project(owner, draft)
    assert permissions.can_view_project(organiser, draft)
    assert not permissions.can_view_project(other, draft)
    assert not permissions.can_view_project(buyer, draft)
    assert not permissions.can_view_project(None, draft)
    assert permissions.can_edit_project(owner, draft)
    assert not permissions.can_edit_project(other, draft)
    assert not permissions.can_edit_project(organiser, draft)


def test_unapproved_exhibitor_is_refused(fair: Fair, make_exhibitor: Callable[..., Any]) -> None:
    exhibitor, user = make_exhibitor(fair, approved=False)
    with pytest.raises(Forbidden) as refused:
        permissions.require_approved_exhibitor(user, exhibitor)
    assert refused.value.code == "not_approved"
