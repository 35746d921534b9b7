"""fair/static/js/money.js against fair/money.py: the same cases through both, to the fen.

Node (installed beside npm) runs the module; each case comes back as its result or its error,
and the Python module's answer to the same case is the expected one.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from typing import Any

import pytest

from fair import money
from tests.serving import ROOT

MODULE = ROOT / "fair" / "static" / "js" / "money.js"

# Reads [[function, argument, options], ...] on stdin; writes [{"value"} or {"error"}, ...].
RUNNER = """
import { readFileSync } from "node:fs";
const money = await import(process.argv[1]);
const cases = JSON.parse(readFileSync(0, "utf8"));
const results = cases.map(([name, argument, options]) => {
  try {
    const input = name.startsWith("format") ? BigInt(argument) : argument;
    const output = name === "parseYuan"
      ? money.parseYuan(input, options ? {allowZero: options.allow_zero,
                                         maximumFen: BigInt(options.maximum_fen)}
                               : undefined)
      : money[name](input);
    return {value: String(output)};
  } catch (error) {
    return error.name === "MoneyError" ? {error: error.name, reason: error.reason}
                                       : {error: error.name};
  }
});
process.stdout.write(JSON.stringify(results));
"""

#: Fen amounts at the edges: zero, one fen, rounding of 万元 on both sides of the half, the
#: most one intent may be, and 99,999,999.99 万元, the largest total the big screen shows.
EDGE_FEN = [
    0, 1, 9, 10, 99, 100, 101, 4_999, 5_000, 5_001, 9_999, 10_000, 12_345, 994_999, 995_000,
    999_999, 1_000_000, 1_004_999, 1_005_000, 3_856_830_000, 3_856_834_999, 3_856_835_000,
    money.MAX_CHARGE_FEN, money.MAX_DEAL_FEN - 1, money.MAX_DEAL_FEN, money.MAX_DEAL_FEN + 1,
    99_999_999_99 * money.FEN_PER_WAN // 100, 99_999_999_99 * money.FEN_PER_WAN // 100 + 4_999,
    99_999_999_99 * money.FEN_PER_WAN // 100 - 5_000, 2**53 + 1, 10**18 + 7,
]

#: Typed text: limits, decimals, and what Python's Decimal would accept but an amount may not.
TYPED = [
    "0", "0.00", "0.01", "0.1", "1", "1.5", "120000", "120000.00", "8800.5", "100000000",
    "100000000.00", "100000000.01", "99999999.99", "999999999999", "999999999999.99",
    "9999999999999", "", " 1", "1 ", "-5", "+5", "1e5", "1_000", "1,000", "１２３", "12.345",
    "01", "00.50", ".5", "5.", "NaN", "Infinity", "0x10", "١٢٣", "1.00\n",
]

#: What people type on a page: separators, full-width digits, currency marks, and look-alikes
#: that must stay refused (a decimal comma, grouping not in threes, a unit we do not read).
TYPED_ON_PAGES = [
    *TYPED, "12,000", "12,000.50", "1,234,567.8", "１２,０００元", "¥ 12,000.5", "￥１２３",
    "12，000", "１２３．４５", "８８００元", " 12000 元 ", "\u300012000\u3000", "12,50", "1,2345",
    "1,000.", "12万", "元", "¥", "12,000,00", "1,000,000,000", "100,000,000.01", "100,000,000",
    "RMB 100", "12 000", "12.000,50", "¥¥12", "12元元", "０.５", "12\t元", "\ufeff12",
]

FORMATTERS = ["formatYuan", "formatYuanGrouped", "formatYuanShort", "formatWan"]
PYTHON_FORMATTERS = {
    "formatYuan": money.format_yuan, "formatYuanGrouped": money.format_yuan_grouped,
    "formatYuanShort": money.format_yuan_short, "formatWan": money.format_wan,
}
PARSE_OPTIONS: list[dict[str, Any] | None] = [
    None, {"allow_zero": True, "maximum_fen": money.MAX_DEAL_FEN},
    {"allow_zero": False, "maximum_fen": money.MAX_CHARGE_FEN},
]


def run_js(cases: list[list[Any]]) -> list[dict[str, str]]:
    node = shutil.which("node")
    assert node is not None, "node is missing; `make install` brings it with npm"
    finished = subprocess.run(  # noqa: S603 - our own script and module
        [node, "--experimental-detect-module", "--no-warnings", "--input-type=module",
         "-e", RUNNER, MODULE.as_uri()],
        input=json.dumps(cases), capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stderr
    results: list[dict[str, str]] = json.loads(finished.stdout)
    return results


def python_parse(text: str, options: dict[str, Any] | None) -> dict[str, str]:
    try:
        return {"value": str(money.parse_yuan(text, **(options or {})))}
    except money.MoneyError as error:
        return {"error": "MoneyError", "reason": error.reason}


def fen_cases() -> list[int]:
    rng = random.Random(12)
    drawn = [rng.randrange(0, money.MAX_DEAL_FEN * 10_000) for _ in range(2_000)]
    drawn += [rng.randrange(0, 100_000_000) for _ in range(2_000)]
    return EDGE_FEN + [-fen for fen in EDGE_FEN if fen] + drawn


def test_formatting_matches_fair_money_to_the_fen() -> None:
    amounts = fen_cases()
    cases = [[name, str(fen), None] for name in FORMATTERS for fen in amounts]
    expected = [{"value": PYTHON_FORMATTERS[name](fen)} for name in FORMATTERS
                for fen in amounts]
    assert run_js(cases) == expected


def test_api_amounts_read_back_to_the_same_fen_and_wan() -> None:
    amounts = fen_cases()
    texts = [money.format_yuan(fen) for fen in amounts]
    results = run_js([["fenOf", text, None] for text in texts]
                     + [["wan", text, None] for text in texts]
                     + [["grouped", text, None] for text in texts])
    assert results == ([{"value": str(fen)} for fen in amounts]
                       + [{"value": money.format_wan(fen)} for fen in amounts]
                       + [{"value": money.format_yuan_grouped(fen)} for fen in amounts])


@pytest.mark.parametrize("options", PARSE_OPTIONS)
def test_typed_amounts_are_accepted_and_refused_as_fair_money_does(
    options: dict[str, Any] | None,
) -> None:
    rng = random.Random(7)
    typed = TYPED + [f"{rng.randrange(0, 10**12)}.{rng.randrange(100):02d}" for _ in range(500)]
    typed += [str(rng.randrange(0, 10**9)) for _ in range(200)]
    results = run_js([["parseYuan", text, options] for text in typed])
    assert results == [python_parse(text, options) for text in typed]


def test_typed_text_is_normalised_as_fair_money_does() -> None:
    results = run_js([["normalizeYuan", text, None] for text in TYPED_ON_PAGES])
    assert results == [{"value": money.normalize_yuan(text)} for text in TYPED_ON_PAGES]
    assert money.normalize_yuan("１２,０００元") == "12000"
    assert money.normalize_yuan("12,50") == "12,50"  # a decimal comma is not guessed at


@pytest.mark.parametrize("options", PARSE_OPTIONS)
def test_normalised_amounts_are_accepted_and_refused_alike(
    options: dict[str, Any] | None,
) -> None:
    """The page's check (parseYuan of normalizeYuan) is the server's, limits included."""
    cases = [["parseYuan", money.normalize_yuan(text), options] for text in TYPED_ON_PAGES]
    assert run_js(cases) == [python_parse(money.normalize_yuan(text), options)
                             for text in TYPED_ON_PAGES]
    assert python_parse(money.normalize_yuan("100,000,000.01"), None) == {
        "error": "MoneyError", "reason": "maximum"}


def test_only_a_string_is_an_amount() -> None:
    assert run_js([["parseYuan", 120000, None]]) == [
        {"error": "MoneyError", "reason": "format"}]
    with pytest.raises(money.MoneyError, match="金额须为文本") as refused:
        money.parse_yuan(120000)  # type: ignore[arg-type]
    assert refused.value.reason == "format"


def test_a_malformed_api_amount_is_an_error_not_a_guess() -> None:
    results = run_js([["fenOf", text, None] for text in ("1.5", "1e3", "", "12,000.00")])
    assert all(result.get("error") == "TypeError" for result in results)
