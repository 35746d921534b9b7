/* The intent-to-sign form (deals/templates/deals/_intent_form.html), on every page that has one.
 *
 * The form keeps one Idempotency-Key until the intent is recorded, so a double click or a retry
 * after a lost answer sends the same key and the server records one intent; a refusal, or
 * "sign another", makes a new key. A hall page points the form at the next project on air by
 * changing its action and clicking "sign another".
 */
import { callApi, errorMessage, newKey } from "/static/js/api.js";
import {
  formatYuan, formatYuanGrouped, MAX_DEAL_FEN, MoneyError, normalizeYuan, parseYuan,
} from "/static/js/money.js";

// A refusal the form words itself (data-msg-<code>, such as data-msg-amount-over-ceiling), in the
// page's language; any other in the server's words.
function refusalText(form, data) {
  const code = data && data.error && data.error.code;
  const key = code && `msg${code.replace(/(^|_)([a-z])/g, (_, __, letter) => letter.toUpperCase())}`;
  return (key && form.dataset[key]) || errorMessage(data);
}

function bind(form) {
  let key = newKey();
  const button = form.querySelector('button[type="submit"]');
  const status = form.querySelector(".intent-form-status");
  const done = form.querySelector(".intent-form-done");
  const amount = form.elements.amount;
  const note = form.elements.note;

  function refuse(message, { focus = true } = {}) {
    status.textContent = message;
    if (focus) amount.focus();
  }

  // What people type ("12,000", "１２０００元") is read as the server reads the API's ASCII;
  // the limits are the server's, from money.js, checked before anything is sent.
  function check({ focus = true } = {}) {
    try {
      return parseYuan(normalizeYuan(amount.value));
    } catch (error) {
      if (!(error instanceof MoneyError)) throw error;
      amount.setAttribute("aria-invalid", "true");
      refuse(error.reason === "maximum"
        ? form.dataset.msgMaximum.replace("__AMOUNT__", formatYuanGrouped(MAX_DEAL_FEN))
        : form.dataset.msgAmount, { focus });
      return null;
    }
  }

  amount.addEventListener("change", () => {
    if (!amount.value.trim() || amount.readOnly) return;
    // Leaving the field must not pull focus back to it: keyboard users move on.
    const fen = check({ focus: false });
    if (fen === null) return;
    amount.removeAttribute("aria-invalid");
    status.textContent = form.dataset.msgPreview.replace("__AMOUNT__", formatYuanGrouped(fen));
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    const fen = check();
    if (fen === null) return;
    amount.removeAttribute("aria-invalid");
    const body = { amount: formatYuan(fen), note: note.value };
    if (form.elements.hall_id) body.hall_id = Number(form.elements.hall_id.value);
    button.disabled = true;
    status.textContent = form.dataset.msgSending;
    let answer;
    try {
      answer = await callApi("POST", form.action, { body, key });
    } catch {
      status.textContent = form.dataset.msgFailed;
      button.disabled = false;
      return;
    }
    if (answer.ok) {
      status.textContent = form.dataset.msgDone.replace("__AMOUNT__", answer.data.amount);
      button.hidden = true;
      done.hidden = false;
      amount.readOnly = true;
      note.readOnly = true;
      return;
    }
    // Refused: the same key with a corrected amount would be another request, so the next
    // attempt gets a new key. A server error may have recorded it: keep the key.
    if (answer.status < 500) key = newKey();
    status.textContent = refusalText(form, answer.data) || form.dataset.msgFailed;
    button.disabled = false;
  });

  form.querySelector(".intent-again").addEventListener("click", (event) => {
    event.preventDefault();
    key = newKey();
    form.reset();
    amount.readOnly = false;
    note.readOnly = false;
    done.hidden = true;
    status.textContent = "";
    button.hidden = false;
    button.disabled = false;
    amount.focus();
  });
}

document.querySelectorAll("form.intent-form").forEach(bind);
