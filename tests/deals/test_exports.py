"""CSV and Excel exports: Chinese that Excel opens, safe cells, yuan amounts, per-role rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_babel import to_user_timezone
from openpyxl import load_workbook

from deals import exports
from deals.models import Intent
from exhibitors.models import Exhibitor, Project
from fair.accounts.models import Role, User
from fair.database import utcnow
from fair.models import Fair
from livehalls.models import Hall
from tests.pages import sign_in

Headers = Callable[[User], dict[str, str]]
Sign = Callable[..., Intent]


def export(client: FlaskClient, fair: Fair, headers: dict[str, str], file_format: str,
           lang: str = "zh") -> bytes:
    response = client.get(f"/api/v1/fairs/{fair.id}/deals?format={file_format}&lang={lang}",
                          headers=headers)
    assert response.status_code == 200, response.data[:200]
    assert re.fullmatch(
        rf'attachment; filename="intents-fair-{fair.id}-(organiser|exhibitor|buyer)'
        rf'-\d{{4}}-\d{{2}}-\d{{2}}\.{file_format}"', response.headers["Content-Disposition"])
    return response.data


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize("text", [
    "=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1", "=HYPERLINK(\"http://x\",\"点我\")",
])
def test_text_that_would_run_as_a_formula_is_made_harmless(text: str) -> None:
    assert exports.safe_text(text) == "'" + text


@pytest.mark.parametrize("text", ["川剧", "a=b", "1-2", "", "'quoted"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert exports.safe_text(text) == text


def test_the_csv_opens_in_excel_with_chinese_and_yuan_amounts(
    client: FlaskClient, fair: Fair, project: Project, make_buyer: Callable[..., User],
    make_hall: Callable[..., Hall], organiser: User, token_for: Headers, sign: Sign,
) -> None:
    buyer = make_buyer(province="CN-XZ")
    hall = make_hall(fair, name="一号直播厅")
    first = sign(project, buyer, 3_856_830_000, hall_id=hall.id, note="=cmd|' /C calc'!A0")
    sign(project, buyer, 5, note="第二笔")

    data = export(client, fair, token_for(organiser), "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    response = client.get(f"/api/v1/fairs/{fair.id}/deals?format=csv",
                          headers=token_for(organiser))
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    header, *rows = csv_rows(data)
    assert header[:3] == ["编号", "签约时间", "状态"]
    assert header[exports.AMOUNT_COLUMN] == "意向金额（元）"
    assert len(rows) == 2
    row = dict(zip(header, rows[0], strict=True))
    assert row["编号"] == str(first.id)
    assert row["项目名称"] == "川剧变脸专场演出"
    assert row["类别"] == "演出"
    assert row["采购方省份"] == "西藏自治区"
    assert row["参展方省份"] == "四川省"
    assert row["直播厅"] == "一号直播厅"
    assert row["意向金额（元）"] == "38568300.00"
    assert row["状态"] == "有效"
    assert row["备注"] == "'=cmd|' /C calc'!A0"
    assert row["已付意向金"] == "否"  # the pages' word, not 定金
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row["签约时间"])
    assert rows[1][exports.AMOUNT_COLUMN] == "0.05"


def test_the_csv_speaks_english_when_asked(
    client: FlaskClient, fair: Fair, project: Project, buyer: User, organiser: User,
    token_for: Headers, sign: Sign,
) -> None:
    sign(project, buyer, 100)
    header, row = csv_rows(export(client, fair, token_for(organiser), "csv", lang="en"))
    assert header[0] == "ID"
    assert header[exports.AMOUNT_COLUMN] == "Amount (yuan)"
    assert "Chongqing" in row


def test_the_workbook_holds_numbers_shown_as_yuan_and_formulas_as_text(
    client: FlaskClient, fair: Fair, project: Project, buyer: User, organiser: User,
    token_for: Headers, sign: Sign,
) -> None:
    sign(project, buyer, 123_456_789, note="=1+1")
    sign(project, buyer, 1, note="@SUM(A1)")
    data = export(client, fair, token_for(organiser), "xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    rows = list(sheet.iter_rows(values_only=False))
    assert [cell.value for cell in rows[0]][:2] == ["编号", "签约时间"]
    amount, small = rows[1][exports.AMOUNT_COLUMN], rows[2][exports.AMOUNT_COLUMN]
    assert amount.data_type == "n"
    assert amount.number_format == "#,##0.00"
    assert str(amount.value) == "1234567.89"
    assert str(small.value) == "0.01"
    note = rows[1][exports.NOTE_COLUMN]
    assert (note.value, note.data_type) == ("=1+1", "s")
    signed_at = rows[1][exports.SIGNED_AT_COLUMN]
    assert isinstance(signed_at.value, dt.datetime)  # a real date, not text
    assert signed_at.number_format == "yyyy-mm-dd hh:mm:ss"
    assert rows[2][exports.NOTE_COLUMN].value == "@SUM(A1)"


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_each_role_exports_the_intents_it_may_see(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_buyer: Callable[..., User], organiser: User,
    make_user: Callable[..., User], token_for: Headers, sign: Sign, file_format: str,
) -> None:
    _, owner = make_exhibitor(fair)
    mine, theirs = make_project(fair, user=owner), make_project(fair)
    alice, bob = make_buyer(), make_buyer()
    ids = [sign(mine, alice).id, sign(theirs, alice).id, sign(mine, bob).id]

    def exported(user: User) -> list[int]:
        data = export(client, fair, token_for(user), file_format)
        if file_format == "csv":
            return [int(row[0]) for row in csv_rows(data)[1:]]
        sheet = load_workbook(io.BytesIO(data)).active
        return [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]

    assert exported(organiser) == ids
    assert exported(owner) == [ids[0], ids[2]]
    assert exported(alice) == ids[:2]
    assert exported(make_user(Role.exhibitor)) == []
    response = client.get(f"/api/v1/fairs/{fair.id}/deals?format={file_format}")
    assert response.status_code == 401


def test_each_role_downloads_a_file_named_for_it_the_fair_and_the_day(
    client: FlaskClient, fair: Fair, project: Project, buyer: User, organiser: User,
    token_for: Headers, sign: Sign,
) -> None:
    sign(project, buyer, 100)
    names = set()
    for user in (organiser, buyer):
        response = client.get(f"/api/v1/fairs/{fair.id}/deals?format=csv",
                              headers=token_for(user))
        names.add(response.headers["Content-Disposition"])
    today = to_user_timezone(utcnow()).date().isoformat()
    assert names == {
        f'attachment; filename="intents-fair-{fair.id}-organiser-{today}.csv"',
        f'attachment; filename="intents-fair-{fair.id}-buyer-{today}.csv"'}


def test_an_exhibitor_sees_its_leads_contacts_on_its_page_and_in_its_exports(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], make_user: Callable[..., User], organiser: User,
    token_for: Headers, sign: Sign,
) -> None:
    _, owner = make_exhibitor(fair)
    _, other = make_exhibitor(fair)
    mine = make_project(fair, user=owner)
    buyer = make_user(Role.buyer)
    sign(mine, buyer, 100)
    header, row = csv_rows(export(client, fair, token_for(owner), "csv"))
    lead = dict(zip(header, row, strict=True))
    assert (lead["联系人"], lead["联系电话"], lead["邮箱"]) == (buyer.name, buyer.phone,
                                                          buyer.email)
    sheet = load_workbook(io.BytesIO(export(client, fair, token_for(owner), "xlsx"))).active
    assert [cell.value for cell in next(sheet.iter_rows())][-3:] == ["联系人", "联系电话", "邮箱"]
    # Another exhibitor has no intents, so no contacts; the buyer's own file has no contacts.
    assert len(csv_rows(export(client, fair, token_for(other), "csv"))) == 1
    assert "联系电话" not in csv_rows(export(client, fair, token_for(buyer), "csv"))[0]
    sign_in(client, owner)
    page = client.get("/portal/intents").text
    assert buyer.phone in page
    assert buyer.email in page
