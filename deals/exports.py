"""Intents as CSV and Excel files for organisers, exhibitors (their leads) and buyers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import to_user_timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from deals.models import Intent, IntentStatus
from fair.i18n import category_label, province_label
from fair.money import format_yuan, yuan_decimal

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: A cell a user wrote that starts with one of these would run as a formula when the file is
#: opened: the CSV prefixes it with an apostrophe (``safe_text``), the workbook stores it as
#: plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
YUAN_FORMAT = "#,##0.00"
#: The column of the amount, counted from zero.
AMOUNT_COLUMN = 11
#: The buyer's note; the contact columns, when asked for, follow it.
NOTE_COLUMN = 13
#: Excel column widths, in characters, so that the sheet reads without resizing.
WIDTHS = (8, 20, 8, 10, 30, 12, 26, 12, 26, 12, 14, 18, 10, 30, 12, 18, 26)

#: The column of the signing time, counted from zero, and how both formats write it.
SIGNED_AT_COLUMN = 1
DATE_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"

Cell = str | int | dt.datetime


def file_name(fair_id: int, role: str, today: dt.date, extension: str) -> str:
    """intents-fair-1-organiser-2026-12-02.csv: whose file, of which fair, from which day."""
    return f"intents-fair-{fair_id}-{role}-{today.isoformat()}.{extension}"


def headers(*, contacts: bool = False) -> list[str]:
    """The columns; with `contacts`, the buyer's contact person, phone and email last."""
    return [
        _("编号"), _("签约时间"), _("状态"), _("项目编号"), _("项目名称"), _("类别"),
        _("参展机构"), _("参展方省份"), _("采购机构"), _("采购方省份"), _("直播厅"),
        _("意向金额（元）"), _("已付意向金"), _("备注"),
        *((_("联系人"), _("联系电话"), _("邮箱")) if contacts else ()),
    ]


def row(intent: Intent, *, contacts: bool = False) -> list[Cell]:
    """One intent's cells, the amount as fen (each format writes it as yuan)."""
    status = _("有效") if intent.status is IntentStatus.active else _("已撤回")
    # The fair's local time, without a zone: spreadsheets hold no zones.
    signed_at = to_user_timezone(intent.created_at).replace(tzinfo=None, microsecond=0)
    return [
        intent.id,
        signed_at,
        status,
        intent.project_id,
        intent.project.title,
        category_label(intent.category),
        intent.project.exhibitor.organisation.name,
        province_label(intent.exhibitor_province),
        intent.buyer_organisation.name,
        province_label(intent.buyer_province),
        intent.hall.name if intent.hall is not None else "",
        intent.amount_fen,
        _("是") if intent.secured else _("否"),
        intent.note,
        *((intent.buyer.name, intent.buyer.phone, intent.buyer.email) if contacts else ()),
    ]


def intent_time(value: Cell) -> Cell:
    """The signing time as CSV text, 2026-12-02 14:30:00."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, dt.datetime) else value


def safe_text(value: str) -> str:
    """Text that a spreadsheet shows instead of running as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


@dataclass(frozen=True)
class ExportFile:
    body: bytes
    content_type: str
    extension: str


def render(intents: Iterable[Intent], *, file_format: str, title: str,
           contacts: bool = False) -> ExportFile:
    """The intents as a "csv" or "xlsx" file; with `contacts`, the buyers' contacts (leads)."""
    if file_format == "csv":
        return ExportFile(to_csv(intents, contacts=contacts), CSV_TYPE, "csv")
    return ExportFile(to_xlsx(intents, title=title, contacts=contacts), XLSX_TYPE, "xlsx")


def to_csv(intents: Iterable[Intent], *, contacts: bool = False) -> bytes:
    """UTF-8 with a byte order mark (without it Excel reads Chinese as mojibake), amounts as
    yuan text such as 1234.50."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(contacts=contacts))
    for intent in intents:
        cells = row(intent, contacts=contacts)
        cells[AMOUNT_COLUMN] = format_yuan(intent.amount_fen)
        cells[SIGNED_AT_COLUMN] = intent_time(cells[SIGNED_AT_COLUMN])
        writer.writerow([safe_text(cell) if isinstance(cell, str) else cell for cell in cells])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(intents: Iterable[Intent], *, title: str, contacts: bool = False) -> bytes:
    """One sheet; the amount is a number shown as 1,234.50 so that Excel can add it up."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    sheet.append([_text_cell(sheet, header, font=bold)
                  for header in headers(contacts=contacts)])
    for intent in intents:
        cells: list[WriteOnlyCell] = []
        for index, value in enumerate(row(intent, contacts=contacts)):
            if index == AMOUNT_COLUMN:
                cell = WriteOnlyCell(sheet, value=yuan_decimal(intent.amount_fen))
                cell.number_format = YUAN_FORMAT
            elif isinstance(value, dt.datetime):
                # A real date, that Excel can sort, filter and compute with.
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = DATE_TIME_FORMAT
            elif isinstance(value, str):
                cell = _text_cell(sheet, value)
            else:
                cell = WriteOnlyCell(sheet, value=value)
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _text_cell(sheet: object, value: str, *, font: Font | None = None) -> WriteOnlyCell:
    # openpyxl takes any text starting with "=" for a formula; say it is a string.
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell
