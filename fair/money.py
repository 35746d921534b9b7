"""Money: the one module that parses, checks and formats amounts (integer fen in Python and
the database, yuan as decimal strings such as "120000.00" in the API)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields

FEN_PER_YUAN = 100
FEN_PER_WAN = 10_000 * FEN_PER_YUAN
#: The most one intent may be worth: 100,000,000.00 yuan.
MAX_DEAL_FEN = 100_000_000 * FEN_PER_YUAN
#: Stripe's per-charge maximum for CNY: 999,999.99 yuan.
MAX_CHARGE_FEN = 99_999_999

#: Text is matched against this ASCII pattern before anything else: Python's Decimal would
#: accept full-width digits, "1_000", spaces and "NaN".
_YUAN_PATTERN = re.compile(r"(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?", re.ASCII)


class MoneyError(ValueError):
    """Text is not an acceptable amount of yuan; `reason` is "format", "zero" or "maximum"."""

    def __init__(self, message: object, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_yuan(text: str, *, allow_zero: bool = False, maximum_fen: int = MAX_DEAL_FEN) -> int:
    """Turn "123.45" into 12345 fen, refusing anything that is not a plain amount."""
    if not isinstance(text, str):
        raise MoneyError(_l("金额须为文本，例如 \"120000.00\"。"), "format")
    match = _YUAN_PATTERN.fullmatch(text)
    if match is None:
        raise MoneyError(_l("金额须为数字，最多两位小数，例如 \"120000.00\"。"), "format")
    whole, decimals = match.group(1), match.group(2) or ""
    fen = int(whole) * FEN_PER_YUAN + int(decimals.ljust(2, "0"))
    if fen == 0 and not allow_zero:
        raise MoneyError(_l("金额须大于零。"), "zero")
    if fen > maximum_fen:
        raise MoneyError(_l("金额最多 %(amount)s 元。", amount=format_yuan_grouped(maximum_fen)),
                         "maximum")
    return fen


#: Full-width digits and point, as Chinese input methods type them.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．", "0123456789.")
#: Thousands grouped by commas (ASCII or full-width) in threes, and nothing else: "12,50"
#: is refused rather than read as 1250 (it may be a decimal comma).
_GROUPED = re.compile(r"[0-9]{1,3}(?:[,，][0-9]{3})+(?:\.[0-9]*)?", re.ASCII)
_CURRENCY_MARKS = re.compile(r"\A[¥￥][ \u3000]*|[ \u3000]*元\Z")
#: The blanks taken off both ends; the same list as money.js, so both agree to the character.
_BLANKS = " \t\r\n\u3000"


def normalize_yuan(text: str) -> str:
    """What a person typed ("１２,０００元", "¥ 12,000.5") as the API's ASCII ("12000.5").

    Full-width digits, thousands separators in threes, a leading ¥ and a trailing 元 are
    taken away; anything else is left for parse_yuan to refuse. Only pages call this: the
    API keeps its one ASCII form.
    """
    if not isinstance(text, str):
        return text
    cleaned = _CURRENCY_MARKS.sub("", text.strip(_BLANKS).translate(_FULL_WIDTH))
    cleaned = cleaned.strip(_BLANKS)
    if _GROUPED.fullmatch(cleaned):
        cleaned = cleaned.replace(",", "").replace("，", "")
    return cleaned


def format_yuan(fen: int) -> str:
    """12345 fen -> "123.45"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def format_yuan_grouped(fen: int) -> str:
    """3856830000 fen -> "38,568,300.00" for pages."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole:,}.{cents:02d}"


def format_yuan_short(fen: int) -> str:
    """50000000 fen -> "500,000"; cents are kept only when there are some ("1,234.50")."""
    grouped = format_yuan_grouped(fen)
    return grouped.removesuffix(".00")


def format_wan(fen: int) -> str:
    """3856830000 fen -> "3856.83" (万元, two decimals, half up)."""
    sign = "-" if fen < 0 else ""
    hundredths = (abs(fen) + FEN_PER_WAN // 200) // (FEN_PER_WAN // 100)
    whole, cents = divmod(hundredths, 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan_decimal(fen: int) -> Decimal:
    """12345 fen -> Decimal("123.45"), for a spreadsheet cell that must hold a number."""
    return Decimal(fen).scaleb(-2)


def share_of(fen: int, percent: int) -> int:
    """A whole-percent share of an amount, rounded half up to the fen."""
    return (fen * percent + 50) // 100


def yuan_pattern(*, allow_zero: bool = False, maximum_fen: int = MAX_DEAL_FEN) -> str:
    """The regular expression of exactly the texts parse_yuan accepts with these limits, for
    the OpenAPI document: clients (and schemathesis) learn the rule, not a looser one."""
    top_whole, top_cents = divmod(maximum_fen, FEN_PER_YUAN)
    any_cents = r"(\.[0-9]{1,2})?"
    branches = []
    if top_whole > 0:
        below = _wholes_up_to(top_whole - 1, from_one=not allow_zero)
        if below:
            branches.append(f"({below}){any_cents}")
    branches.append(f"{top_whole}{_cents_up_to(top_cents)}")
    if not allow_zero and top_whole > 0:
        branches.append(r"0\.(0[1-9]|[1-9][0-9]?)")  # less than a yuan, more than nothing
    return "^(" + "|".join(branches) + ")$"


def _wholes_up_to(n: int, *, from_one: bool) -> str:
    """Alternatives for the whole numbers 0 (or 1) to n, written without leading zeros."""
    if n < (1 if from_one else 0):
        return ""
    digits = str(n)
    branches = [("[1-9]" if from_one else "[0-9]") if length == 1
                else f"[1-9][0-9]{{{length - 1}}}" for length in range(1, len(digits))]
    for index, digit in enumerate(digits):
        low = 1 if index == 0 and (len(digits) > 1 or from_one) else 0
        rest = len(digits) - index - 1
        if int(digit) - 1 >= low:
            branches.append(digits[:index] + f"[{low}-{int(digit) - 1}]"
                            + (f"[0-9]{{{rest}}}" if rest else ""))
    branches.append(digits)
    return "|".join(branches)


def _cents_up_to(cents: int) -> str:
    """The optional decimals of at most `cents` fen ("5" being 50)."""
    tens, units = divmod(cents, 10)
    branches = [f"[0-{tens - 1}][0-9]?"] if tens else []
    branches.append(f"{tens}[0-{units}]?" if units else f"{tens}0?")
    return r"(\.(" + "|".join(branches) + "))?"


class YuanField(fields.Field):
    """Marshmallow field: loads a yuan decimal string to fen, dumps fen to a string.

    JSON numbers are refused: a float has already lost the amount the user meant.
    """

    default_error_messages = {"invalid": _l("金额无效。")}

    def __init__(
        self, *, allow_zero: bool = False, maximum_fen: int = MAX_DEAL_FEN, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.allow_zero = allow_zero
        self.maximum_fen = maximum_fen
        self.metadata = dict(self.metadata)  # callers share one metadata dict between fields
        self.metadata.setdefault("type", "string")
        self.metadata.setdefault("pattern", yuan_pattern(allow_zero=allow_zero,
                                                         maximum_fen=maximum_fen))
        self.metadata.setdefault("example", "120000.00")

    def _serialize(self, value: int | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_yuan(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_yuan(value, allow_zero=self.allow_zero, maximum_fen=self.maximum_fen)
        except MoneyError as error:
            raise ValidationError(str(error)) from error
