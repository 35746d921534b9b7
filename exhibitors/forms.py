"""Page forms: the catalogue's search, a project, a media upload."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import Form, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from exhibitors.catalogue import SORTS, CatalogueQuery
from exhibitors.schemas import MAX_DESCRIPTION
from fair.forms import AT_MOST, BETWEEN, REQUIRED, FairForm
from fair.i18n import category_label
from fair.money import MoneyError, normalize_yuan, parse_yuan
from fair.reference import CATEGORIES, PROVINCES

_TAG_SEPARATORS = re.compile(r"[,，、;；\s]+")
PRICE_FORMAT = _l("请填写大于 0 的金额，最多两位小数，例如 12000.00。")
MAX_TAGS = 20
MAX_TAG_LENGTH = 30
#: Deeper pages are not worth an OFFSET scan; nobody browses past them.
MAX_PAGE = 1_000


class CatalogueForm(Form):
    """The catalogue's query string. A filter that does not parse is left out, not refused."""

    q = StringField(_l("关键词"), validators=[Optional(), Length(max=100)])
    category = StringField()
    province = StringField()
    min_price = StringField()
    max_price = StringField()
    sort = StringField()
    page = IntegerField(validators=[Optional()])

    def to_query(self, *, per_page: int) -> CatalogueQuery:
        return CatalogueQuery(
            q=(self.q.data or "").strip()[:100],
            category=self.category.data if self.category.data in CATEGORIES else None,
            province=self.province.data if self.province.data in PROVINCES else None,
            min_price_fen=_fen_or_none(self.min_price.data),
            max_price_fen=_fen_or_none(self.max_price.data),
            sort=self.sort.data if self.sort.data in SORTS else "relevance",
            page=min(max(self.page.data or 1, 1), MAX_PAGE),
            per_page=per_page,
        )


def _fen_or_none(text: str | None) -> int | None:
    try:
        return parse_yuan(normalize_yuan(text or ""), allow_zero=True)
    except MoneyError:
        return None


class ProjectForm(FairForm):
    title = StringField(
        _l("项目名称"),
        validators=[DataRequired(REQUIRED), Length(min=2, max=200, message=BETWEEN)],
    )
    category = SelectField(_l("类别"), validators=[DataRequired(REQUIRED)])
    price = StringField(_l("参考价格（元）"), validators=[DataRequired(REQUIRED)])
    summary = TextAreaField(
        _l("简介"), validators=[Length(max=500, message=AT_MOST)]
    )
    title_en = StringField(
        _l("英文名称（可选）"), validators=[Length(max=200, message=AT_MOST)]
    )
    summary_en = TextAreaField(
        _l("英文简介（可选）"), validators=[Length(max=500, message=AT_MOST)]
    )
    description = TextAreaField(
        _l("详细介绍"), validators=[Length(max=MAX_DESCRIPTION, message=AT_MOST)]
    )
    tags = StringField(_l("标签"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Category names follow the page's language, so the choices are made per request.
        self.category.choices = [
            SelectChoice(code, category_label(code)) for code in CATEGORIES
        ]

    def validate_price(self, field: StringField) -> None:
        try:
            parse_yuan(normalize_yuan(field.data or ""))
        except MoneyError as error:
            if error.reason == "maximum":
                raise ValidationError(str(error)) from error
            raise ValidationError(PRICE_FORMAT) from error

    def validate_tags(self, field: StringField) -> None:
        tags = self.tag_list
        if len(tags) > MAX_TAGS:
            raise ValidationError(_l("最多 %(count)d 个标签。", count=MAX_TAGS))
        if any(len(tag) > MAX_TAG_LENGTH for tag in tags):
            raise ValidationError(_l("每个标签最多 %(count)d 个字。", count=MAX_TAG_LENGTH))

    @property
    def price_fen(self) -> int:
        return parse_yuan(normalize_yuan(self.price.data or ""))

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in _TAG_SEPARATORS.split(self.tags.data or "") if tag]

    def changes(self) -> dict[str, Any]:
        """The fields as exhibitors.service takes them."""
        return {
            "title": self.title.data or "",
            "category": self.category.data,
            "price_fen": self.price_fen,
            "summary": self.summary.data or "",
            "title_en": self.title_en.data or "",
            "summary_en": self.summary_en.data or "",
            "description": self.description.data or "",
            "tags": self.tag_list,
        }


class MediaForm(FairForm):
    file = FileField(_l("选择文件"), validators=[FileRequired(_l("请选择要上传的文件。"))])
