"""Money: parsing refuses everything that is not a plain amount; formatting round-trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from fair import money
from fair.money import (
    MAX_CHARGE_FEN,
    MAX_DEAL_FEN,
    MoneyError,
    YuanField,
    format_wan,
    format_yuan,
    format_yuan_grouped,
    parse_yuan,
    share_of,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1", 100),
        ("0.01", 1),
        ("0.1", 10),
        ("120000.00", 12_000_000),
        ("38568300.00", 3_856_830_000),
        ("100000000.00", MAX_DEAL_FEN),
        ("100000000", MAX_DEAL_FEN),
    ],
)
def test_plain_amounts_parse_to_fen(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "0", "0.00", "-1", "-0.01", "1.001", "abc", "", " ", "1e5", "1E5", "NaN", "nan",
        "Infinity", "-Infinity", "inf", "１２３", "1_000", " 12", "12 ", "+12", "1,000.00",
        "01", "1.", ".5", "100000000.01", "999999999999", "0x10", "12\n", "٣",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_yuan(text)


@pytest.mark.parametrize("value", [1.5, 100, True, None, ["1"], {"a": 1}])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(MoneyError):
        parse_yuan(value)  # type: ignore[arg-type] # the point is a wrong type


def test_zero_is_allowed_only_when_asked() -> None:
    assert parse_yuan("0.00", allow_zero=True) == 0


def test_custom_maximum_applies() -> None:
    assert parse_yuan("999999.99", maximum_fen=MAX_CHARGE_FEN) == MAX_CHARGE_FEN
    with pytest.raises(MoneyError):
        parse_yuan("1000000.00", maximum_fen=MAX_CHARGE_FEN)


def test_formats_for_api_pages_and_big_screen() -> None:
    assert format_yuan(12_000_000) == "120000.00"
    assert format_yuan(5) == "0.05"
    assert format_yuan_grouped(3_856_830_000) == "38,568,300.00"
    assert format_wan(3_856_830_000) == "3856.83"
    assert format_wan(4_999) == "0.00"
    assert format_wan(5_000) == "0.01"
    assert format_wan(0) == "0.00"


def test_share_rounds_half_up_to_the_fen() -> None:
    assert share_of(12_345, 10) == 1_235
    assert share_of(12_344, 10) == 1_234
    assert share_of(100, 100) == 100


@given(st.integers(min_value=1, max_value=MAX_DEAL_FEN))
def test_format_then_parse_round_trips(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


@given(st.lists(st.integers(min_value=1, max_value=MAX_DEAL_FEN), max_size=50))
def test_wan_of_a_sum_is_the_sum_in_wan(amounts: list[int]) -> None:
    total = sum(amounts)
    whole, decimals = format_wan(total).split(".")
    assert len(decimals) == 2
    assert abs(int(whole) * 1_000_000 + int(decimals) * 10_000 - total) <= 5_000


class PriceSchema(Schema):
    price = YuanField(required=True)


def test_yuan_field_loads_strings_and_dumps_strings() -> None:
    assert PriceSchema().load({"price": "12.30"}) == {"price": 1_230}
    assert PriceSchema().dump({"price": 1_230}) == {"price": "12.30"}


@pytest.mark.parametrize("value", [12.3, 12, "12.345", "NaN", None])
def test_yuan_field_refuses_numbers_and_bad_text(value: object) -> None:
    with pytest.raises(ValidationError) as error:
        PriceSchema().load({"price": value})
    assert "price" in error.value.messages


PATTERN_LIMITS = [(False, money.MAX_DEAL_FEN), (True, money.MAX_CHARGE_FEN), (False, 12_345),
                  (True, 100), (False, 5_000_50)]


@pytest.mark.parametrize(("allow_zero", "maximum_fen"), PATTERN_LIMITS)
@given(fen=st.integers(min_value=0, max_value=2 * money.MAX_DEAL_FEN),
       form=st.sampled_from(["full", "short", "whole"]))
def test_the_documented_pattern_admits_exactly_what_is_parsed(
    allow_zero: bool, maximum_fen: int, fen: int, form: str,
) -> None:
    text = money.format_yuan(fen)
    if form == "short" and text.endswith("0"):
        text = text[:-1]
    elif form == "whole" and text.endswith(".00"):
        text = text[:-3]
    pattern = re.compile(money.yuan_pattern(allow_zero=allow_zero, maximum_fen=maximum_fen))
    try:
        money.parse_yuan(text, allow_zero=allow_zero, maximum_fen=maximum_fen)
    except money.MoneyError:
        accepted = False
    else:
        accepted = True
    assert (pattern.fullmatch(text) is not None) is accepted, text


@pytest.mark.parametrize(("allow_zero", "maximum_fen"), PATTERN_LIMITS)
@settings(max_examples=200)
@given(data=st.data())
def test_every_text_the_pattern_admits_is_parsed(allow_zero: bool, maximum_fen: int,
                                                 data: st.DataObject) -> None:
    pattern = money.yuan_pattern(allow_zero=allow_zero, maximum_fen=maximum_fen)
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    assert money.parse_yuan(text, allow_zero=allow_zero, maximum_fen=maximum_fen) <= maximum_fen


def test_the_intent_amount_pattern_refuses_zero() -> None:
    pattern = re.compile(money.yuan_pattern())
    assert [text for text in ("0", "0.0", "0.00", "0.01", "100000000.00", "100000000.01")
            if pattern.fullmatch(text)] == ["0.01", "100000000.00"]
