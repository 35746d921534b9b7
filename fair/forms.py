"""The base of every page form: Flask-WTF's CSRF token, and service refusals shown in place."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Form, PasswordField, StringField
from wtforms.fields.core import UnboundField

from fair.errors import FairError

#: Refusals that pages explain in the reader's language; services speak English to the API.
REFUSALS = {
    "bad_credentials": _l("邮箱或密码不正确。"),
    "email_taken": _l("该邮箱已注册，请直接登录。"),
    "fair_closed": _l("本届大会已闭幕，不再接受申请。"),
    "not_an_exhibitor": _l("请先申请参展。"),
    "not_approved": _l("参展申请尚未通过审核。"),
    "not_yours": _l("只能修改本单位的项目。"),
    "withdrawn": _l("已撤回的项目不能再修改或发布。"),
    "unsupported_media": _l("只接受 JPEG、PNG、WebP 图片，MP4 视频或 PDF 文件。"),
    "too_large": _l("文件过大。"),
    "password_too_short": _l("密码至少 10 个字符。"),
    "password_is_email": _l("密码不能与邮箱相同。"),
    "common_password": _l("这个密码太常见，容易被猜中，请换一个。"),
}

REQUIRED = _l("请填写此项。")
BETWEEN = _l("请填写 %(min)d 到 %(max)d 个字。")
AT_MOST = _l("最多 %(max)d 个字。")


def refusal_text(error: FairError) -> str:
    """The refusal in the page's language when it is one pages know, else the service's words."""
    text = REFUSALS.get(error.code)
    return str(text) if text is not None else error.message


class FairForm(FlaskForm):
    """A Flask-WTF form (CSRF checked on submit) that can show a service's refusal."""

    class Meta:
        def bind_field(self, form: Form, unbound_field: UnboundField,
                       options: dict[str, Any]) -> Any:
            # Text is trimmed before its length is checked (two spaces are no name); passwords
            # are taken as typed.
            field_class = unbound_field.field_class
            if issubclass(field_class, StringField) and not issubclass(field_class, PasswordField):
                options["filters"] = [*unbound_field.kwargs.get("filters", ()), _strip]
            return unbound_field.bind(form=form, **options)

    def show_refusal(self, error: FairError) -> None:
        """Put the refusal on the fields it names, or above the form when it names none."""
        placed = False
        known = REFUSALS.get(error.code)
        for name, messages in _flatten(error.fields):
            field = self._fields.get(name)
            if field is not None:
                # The page's own words where it has them; the service speaks English.
                field.errors = [*field.errors, *([str(known)] if known else messages)]
                placed = True
        if not placed:
            self.form_errors.append(refusal_text(error))


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _flatten(fields: Mapping[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """Nested API field errors ({"organisation": {"province": [...]}}) by their leaf names."""
    for name, value in fields.items():
        if isinstance(value, Mapping):
            yield from _flatten(value)
        else:
            yield name, [str(message) for message in value]
