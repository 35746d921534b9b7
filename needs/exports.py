"""Needs and their responses as CSV and Excel files for organisers, one row per response (a
need without any has one row of its own)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from flask_babel import gettext as _
from flask_babel import to_user_timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from deals.exports import CSV_TYPE, XLSX_TYPE, YUAN_FORMAT, ExportFile, safe_text
from fair.database import as_utc
from fair.i18n import category_label, province_label
from fair.money import format_yuan, yuan_decimal
from needs.models import Need, NeedResponse

#: Columns holding fen, written as yuan.
AMOUNT_COLUMNS = frozenset({6, 7, 12})
Row = tuple[Need, NeedResponse | None, bool]


def headers() -> list[str]:
    return [
        _("需求编号"), _("需求"), _("采购机构"), _("类别"), _("需求地区"), _("城市或区县"),
        _("预算下限（元）"), _("预算上限（元）"), _("截止时间"), _("需求状态"),
        _("参展机构"), _("响应项目"), _("报价（元）"), _("响应状态"), _("已签约意向"),
    ]


def cells(need: Need, response: NeedResponse | None, signed: bool) -> list[str | int | None]:
    """A row's cells, amounts as fen (each format writes them as yuan)."""
    statuses = {"draft": _("草稿"), "open": _("征集中"), "closed": _("已截止"),
                "withdrawn": _("已撤回"), "submitted": _("待回复"), "shortlisted": _("已入围"),
                "declined": _("未采纳")}
    first = [need.id, need.title, need.organisation.name, category_label(need.category),
             province_label(need.province), need.city, need.budget_min_fen,
             need.budget_max_fen,
             to_user_timezone(as_utc(need.deadline)).strftime("%Y-%m-%d %H:%M"),
             statuses[need.shown_status.value]]
    if response is None:
        return [*first, "", "", None, "", ""]
    return [*first, response.exhibitor.organisation.name, response.project.title,
            response.price_fen, statuses[response.status.value],
            _("是") if signed else _("否")]


def render(rows: Iterable[Row], *, file_format: str, title: str) -> ExportFile:
    if file_format == "csv":
        return ExportFile(to_csv(rows), CSV_TYPE, "csv")
    return ExportFile(to_xlsx(rows, title=title), XLSX_TYPE, "xlsx")


def to_csv(rows: Iterable[Row]) -> bytes:
    """UTF-8 with a byte order mark, so that Chinese Excel reads it; amounts as yuan text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers())
    for row in rows:
        written = []
        for index, value in enumerate(cells(*row)):
            if index in AMOUNT_COLUMNS and isinstance(value, int):
                written.append(format_yuan(value))
            else:
                written.append(safe_text(value) if isinstance(value, str) else value)
        writer.writerow(written)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: Iterable[Row], *, title: str) -> bytes:
    """One sheet; amounts are numbers shown as 1,234.50."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    sheet.append([_text(sheet, header, bold) for header in headers()])
    for row in rows:
        line: list[WriteOnlyCell] = []
        for index, value in enumerate(cells(*row)):
            if index in AMOUNT_COLUMNS and isinstance(value, int):
                cell = WriteOnlyCell(sheet, value=yuan_decimal(value))
                cell.number_format = YUAN_FORMAT
            elif isinstance(value, str):
                cell = _text(sheet, value)
            else:
                cell = WriteOnlyCell(sheet, value=value)
            line.append(cell)
        sheet.append(line)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _text(sheet: object, value: str, font: Font | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # never a formula
    if font is not None:
        cell.font = font
    return cell
