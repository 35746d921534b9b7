"""Sign-in and registration forms."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from fair.accounts.service import MIN_PASSWORD_LENGTH
from fair.forms import AT_MOST, BETWEEN, REQUIRED, FairForm
from fair.i18n import province_label
from fair.reference import PROVINCES

#: A plain shape check; the address is proved by the person signing in with it.
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class SignInForm(FairForm):
    email = EmailField(_l("邮箱"), validators=[DataRequired(REQUIRED)])
    password = PasswordField(_l("密码"), validators=[DataRequired(REQUIRED)])


class RegisterForm(FairForm):
    role = RadioField(
        _l("我是"),
        choices=[SelectChoice("exhibitor", _l("参展商")), SelectChoice("buyer", _l("采购方"))],
        default="exhibitor",
        validators=[DataRequired(REQUIRED)],
    )
    organisation_name = StringField(
        _l("单位名称"),
        validators=[DataRequired(REQUIRED), Length(min=2, max=200, message=BETWEEN)],
    )
    province = SelectField(_l("所在省份"), validators=[DataRequired(REQUIRED)])
    name = StringField(
        _l("联系人"),
        validators=[DataRequired(REQUIRED), Length(max=100, message=AT_MOST)],
    )
    phone = StringField(
        _l("联系电话"),
        validators=[Length(max=30, message=AT_MOST)],
        description=_l("采购方必填。提交签约意向后，该项目的参展单位可以看到您的联系人、电话和"
                       "邮箱，以便跟进。"),
    )
    email = EmailField(
        _l("邮箱"),
        validators=[DataRequired(REQUIRED), Regexp(EMAIL, message=_l("请填写有效的邮箱地址。"))],
    )
    password = PasswordField(
        _l("密码"),
        validators=[
            DataRequired(REQUIRED),
            Length(min=MIN_PASSWORD_LENGTH, max=200, message=_l("密码至少 %(min)d 个字符。")),
        ],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Province names follow the page's language, so the choices are made per request.
        self.province.choices = [SelectChoice("", _l("请选择"))] + [
            SelectChoice(code, province_label(code)) for code in PROVINCES
        ]
