"""Both languages, everywhere: the catalogue is complete, services speak through gettext, and
the API answers in the language of Accept-Language with the same machine-readable code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import refresh
from sqlalchemy import select

from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.errors import InvalidInput, translate_fields
from fair.extensions import db
from fair.models import Fair
from tests.pages import post_form, sign_in
from tests.serving import ROOT

PACKAGES = ("fair", "exhibitors", "deals", "livehalls", "audience", "recommend", "needs", "inbox")
CATALOGUE = ROOT / "fair" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every msgid in the code and templates, as `pybabel extract` finds them."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(  # noqa: S603 - our own tool on our own tree
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "_l", "--no-location", "-o", str(pot), *PACKAGES],
        cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as source:
        return [message.id for message in read_po(source) if message.id]


def test_every_extracted_message_has_an_english_translation(extracted: list[str]) -> None:
    with CATALOGUE.open("rb") as source:
        catalogue = read_po(source)
    untranslated = [msgid for msgid in extracted
                    if catalogue.get(msgid) is None or not catalogue.get(msgid).string
                    or catalogue.get(msgid).fuzzy]
    assert untranslated == []


def test_every_source_message_is_chinese(extracted: list[str]) -> None:
    """Chinese is the source language: a Chinese page shows msgids as they are, so an English
    msgid would be English on a Chinese page."""
    ids = [msgid if isinstance(msgid, str) else msgid[0] for msgid in extracted]
    assert [msgid for msgid in ids if not CJK.search(msgid)] == []


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


#: Exceptions that only operators or programmers read (logs, startup, the CLI).
_NOT_FOR_PEOPLE = {"ValueError", "RuntimeError", "TypeError", "AssertionError", "ConfigError",
                   "DisconnectionError", "KeyError", "InvalidRequestError", "ClickException",
                   "UsageError", "BadParameter", "ConnectionRefusedError"}
_FOR_PEOPLE = re.compile(r"(Error|Conflict|Forbidden|NotFound|Unauthorized|InvalidInput|"
                         r"PayloadTooLarge|UnsupportedMedia|Unavailable)$")


def _literal_text(node: ast.AST) -> bool:
    """A string literal or f-string with letters in it (not a code such as "busy")."""
    if isinstance(node, ast.JoinedStr):
        return True
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and " " in node.value.strip())


def _untranslated_in(node: ast.AST) -> Iterator[ast.AST]:
    """Literal text inside an error's message or its `fields` mapping."""
    if _literal_text(node):
        yield node
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _untranslated_in(value)
    elif isinstance(node, ast.List | ast.Tuple):
        for value in node.elts:
            yield from _untranslated_in(value)


def test_no_error_a_person_reads_is_raised_with_untranslated_text() -> None:
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
                if name in _NOT_FOR_PEOPLE or not _FOR_PEOPLE.search(name or ""):
                    continue
                arguments = [*node.args, *(keyword.value for keyword in node.keywords
                                           if keyword.arg in ("message", "fields", "error"))]
                found += [f"{path.relative_to(ROOT)}:{bad.lineno}" for argument in arguments
                          for bad in _untranslated_in(argument)]
            elif isinstance(node, ast.ClassDef) and _FOR_PEOPLE.search(node.name):
                found += [f"{path.relative_to(ROOT)}:{statement.lineno}"
                          for statement in node.body
                          if isinstance(statement, ast.Assign)
                          and any(getattr(target, "id", "") == "message"
                                  for target in statement.targets)
                          and _literal_text(statement.value)]
    assert found == []


# --- The API's language --------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "message"), [
    (None, "没有这届大会。"),
    ("zh-CN,zh;q=0.9", "没有这届大会。"),
    ("fr-FR", "没有这届大会。"),
    ("en-US,en;q=0.9", "No such fair."),
    ("de;q=0.9,en;q=0.5", "No such fair."),
])
def test_api_answers_in_the_language_of_accept_language(
    client: FlaskClient, accept: str | None, message: str,
) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    response = client.get("/api/v1/fairs/999", headers=headers)
    assert response.status_code == 404
    assert response.json == {"error": {"code": "not_found", "message": message, "fields": {}}}


def test_api_field_messages_follow_the_language_too(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    token_for: Callable[[User], dict[str, str]],
) -> None:
    _, user = make_exhibitor(fair)
    body = {"title": "川剧", "category": "performance", "price": "100000000.01"}
    chinese = client.post(f"/api/v1/fairs/{fair.id}/projects", json=body,
                          headers=token_for(user))
    english = client.post(f"/api/v1/fairs/{fair.id}/projects", json=body,
                          headers={**token_for(user), "Accept-Language": "en"})
    assert chinese.status_code == english.status_code == 422
    assert chinese.json["error"]["code"] == english.json["error"]["code"] == "invalid"
    assert chinese.json["error"]["message"] == "填写的内容有误。"
    assert chinese.json["error"]["fields"] == {"price": ["金额最多 100,000,000.00 元。"]}
    assert english.json["error"]["fields"] == {
        "price": ["amount must be at most 100,000,000.00 yuan"]}
    missing = client.post(f"/api/v1/fairs/{fair.id}/projects", json={"category": "x"},
                          headers=token_for(user))
    assert missing.json["error"]["fields"]["title"] == ["必填。"]
    assert missing.json["error"]["fields"]["category"] == ["未知的类别。"]


def test_a_page_refusal_is_in_the_page_language(
    app: Flask, client: FlaskClient, make_user: Callable[..., User],
) -> None:
    make_user(Role.buyer, email="taken@example.com")
    for lang, expected in (("zh", "该邮箱已注册"), ("en", "That email is already registered")):
        client.get(f"/?lang={lang}")
        page = post_form(client, "/register", {
            "email": "taken@example.com", "password": "long-enough-password", "name": "张三",
            "organisation_name": "成都文化馆", "province": "CN-SC", "role": "buyer",
            "phone": "13800000000",
        })
        assert expected in page.get_data(as_text=True)


def test_field_messages_of_marshmallow_are_translated(app: Flask) -> None:
    with app.test_request_context("/api/v1/x", headers={"Accept-Language": "zh"}):
        refresh()  # the test's app context outlives requests, and Babel caches on it
        assert translate_fields({"a": ["Missing data for required field."],
                                 "b": {"c": ["Length must be between 2 and 200."]}}) == {
            "a": ["必填。"], "b": {"c": ["长度须在 2 到 200 之间。"]}}
        assert InvalidInput().to_dict()["message"] == "填写的内容有误。"
    with app.test_request_context("/api/v1/x", headers={"Accept-Language": "en"}):
        refresh()
        assert InvalidInput().to_dict()["message"] == "Some fields are not valid."


def test_a_project_form_price_too_large_is_refused_in_chinese(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    ) -> None:
    _, user = make_exhibitor(fair)
    sign_in(client, user)
    page = post_form(client, "/portal/projects/new?lang=zh", {
        "title": "川剧变脸", "category": "performance", "price": "100,000,001"})
    text = page.get_data(as_text=True)
    assert "金额最多 100,000,000.00 元。" in text
    assert "amount must" not in text
    accepted = post_form(client, "/portal/projects/new", {
        "title": "川剧变脸", "category": "performance", "price": "１２,０００元"})
    assert accepted.status_code == 302
    assert db.session.scalars(select(Project.price_fen)).one() == 1_200_000
