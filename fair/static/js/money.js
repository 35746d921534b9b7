/* Money on the pages, exactly as fair/money.py does it on the server (tests/fair/test_money_js.py
 * feeds both the same cases). Amounts are BigInt fen, never floats: the API's yuan strings
 * ("38568300.00") are read as text, and every figure shown is made from whole fen.
 */

export const FEN_PER_YUAN = 100n;
export const FEN_PER_WAN = 10_000n * FEN_PER_YUAN;
/** The most one intent may be worth: 100,000,000.00 yuan. */
export const MAX_DEAL_FEN = 100_000_000n * FEN_PER_YUAN;
/** Stripe's per-charge maximum for CNY: 999,999.99 yuan. */
export const MAX_CHARGE_FEN = 99_999_999n;

// ASCII digits only: what a person may type as an amount (fair/money.py's _YUAN_PATTERN).
const YUAN_INPUT = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$/;
// What the API writes: format_yuan's output, with its sign.
const YUAN_TEXT = /^(-?)([0-9]+)\.([0-9]{2})$/;

/** Text is not an acceptable amount of yuan; `reason` is "format", "zero" or "maximum". */
export class MoneyError extends Error {
  constructor(message, reason) {
    super(message);
    this.name = "MoneyError";
    this.reason = reason;
  }
}

/** What a person typed, "123.45", as 12345n fen; throws MoneyError as parse_yuan raises. */
export function parseYuan(text, { allowZero = false, maximumFen = MAX_DEAL_FEN } = {}) {
  if (typeof text !== "string") {
    throw new MoneyError('amount must be a string such as "120000.00"', "format");
  }
  const match = YUAN_INPUT.exec(text);
  if (match === null) {
    throw new MoneyError(
      'amount must be digits with at most two decimals, such as "120000.00"', "format");
  }
  const fen = BigInt(match[1]) * FEN_PER_YUAN + BigInt((match[2] || "").padEnd(2, "0"));
  if (fen === 0n && !allowZero) throw new MoneyError("amount must be more than zero", "zero");
  if (fen > BigInt(maximumFen)) {
    throw new MoneyError(
      "amount must be at most " + formatYuanGrouped(BigInt(maximumFen)) + " yuan", "maximum");
  }
  return fen;
}

// Full-width digits and point, as Chinese input methods type them (fair/money.py's _FULL_WIDTH).
const FULL_WIDTH = /[\uff10-\uff19\uff0e]/g;
// Thousands grouped in threes by ASCII or full-width commas, and nothing else (_GROUPED).
const GROUPED = /^[0-9]{1,3}(?:[,\uff0c][0-9]{3})+(?:\.[0-9]*)?$/;
const CURRENCY_MARKS = /^[\u00a5\uffe5][ \u3000]*|[ \u3000]*\u5143$/g;
// The blanks taken off both ends (_BLANKS); String.trim() would take more than Python's.
const BLANKS = /^[ \t\r\n\u3000]+|[ \t\r\n\u3000]+$/g;

/**
 * What a person typed ("１２,０００元", "¥ 12,000.5") as the API's ASCII ("12000.5"), exactly
 * as normalize_yuan does: full-width digits, thousands separators in threes, a leading ¥ and a
 * trailing 元 are taken away; anything else is left for parseYuan to refuse.
 */
export function normalizeYuan(text) {
  if (typeof text !== "string") return text;
  let cleaned = text.replace(BLANKS, "")
    .replace(FULL_WIDTH, (digit) => String.fromCharCode(digit.charCodeAt(0) - 0xfee0))
    .replace(CURRENCY_MARKS, "").replace(BLANKS, "");
  if (GROUPED.test(cleaned)) cleaned = cleaned.replace(/[,\uff0c]/g, "");
  return cleaned;
}

/** An amount the API sent, "-123.45", as -12345n fen. */
export function fenOf(yuan) {
  const match = YUAN_TEXT.exec(yuan);
  if (match === null) throw new TypeError("not an amount of yuan: " + String(yuan));
  const fen = BigInt(match[2]) * FEN_PER_YUAN + BigInt(match[3]);
  return match[1] ? -fen : fen;
}

function split(fen, unit) {
  const value = BigInt(fen);
  const magnitude = value < 0n ? -value : value;
  return [value < 0n ? "-" : "", magnitude / unit, magnitude % unit];
}

function group(whole) {
  return whole.toString().replace(/\B(?=(\d{3})+$)/g, ",");
}

/** 12345n fen -> "123.45". */
export function formatYuan(fen) {
  const [sign, whole, cents] = split(fen, FEN_PER_YUAN);
  return sign + whole + "." + cents.toString().padStart(2, "0");
}

/** 3856830000n fen -> "38,568,300.00". */
export function formatYuanGrouped(fen) {
  const [sign, whole, cents] = split(fen, FEN_PER_YUAN);
  return sign + group(whole) + "." + cents.toString().padStart(2, "0");
}

/** 50000000n fen -> "500,000"; cents are kept only when there are some ("1,234.50"). */
export function formatYuanShort(fen) {
  const grouped = formatYuanGrouped(fen);
  return grouped.endsWith(".00") ? grouped.slice(0, -3) : grouped;
}

/** 3856830000n fen -> "3856.83": 万元 with two decimals, half up. */
export function formatWan(fen) {
  const value = BigInt(fen);
  const magnitude = value < 0n ? -value : value;
  const hundredths = (magnitude + FEN_PER_WAN / 200n) / (FEN_PER_WAN / 100n);
  return (value < 0n ? "-" : "") + hundredths / 100n + "."
    + (hundredths % 100n).toString().padStart(2, "0");
}

/** The API's "38568300.00" as "3856.83" 万元. */
export function wan(yuan) {
  return formatWan(fenOf(yuan));
}

/** The API's "120000.50" as "120,000.50". */
export function grouped(yuan) {
  return formatYuanGrouped(fenOf(yuan));
}

/** A bar's length in 万元: a number for drawing only; every label shows the exact text. */
export function wanNumber(yuan) {
  return Number(wan(yuan));
}
