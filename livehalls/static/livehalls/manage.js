/* The organisers' hall pages and the exhibitor's showcases: each change goes to the halls API
 * (fair/static/js/api.js) and the status line says how it went; a change that alters what the
 * page lists reloads it. Push details are fetched only when asked for: they are a secret.
 */
import { callApi, errorMessage } from "/static/js/api.js";

const text = JSON.parse(document.getElementById("manage-text").textContent);
const configElement = document.getElementById("manage-config");
const config = configElement ? JSON.parse(configElement.textContent) : null;
const status = document.getElementById("manage-status");

function say(message, failed = false) {
  if (!status) return;
  status.textContent = message;
  status.classList.toggle("is-error", failed);
}

/** Call the API; say what went wrong and resolve to null, or resolve to the answer's data. */
async function call(method, url, body) {
  let answer;
  try {
    answer = await callApi(method, url, { body });
  } catch {
    say(text.offline, true);
    return null;
  }
  if (!answer.ok) {
    say(text.failed + (errorMessage(answer.data) || answer.status), true);
    return null;
  }
  return answer.data;
}

function reloadSoon(message) {
  say(message);
  // Long enough to read the status line; the page then shows the new state.
  setTimeout(() => window.location.reload(), 700);
}

// ---- halls: create, rename, reorder, switches -------------------------------------------------

const hallsTable = document.getElementById("hall-rows");
if (hallsTable) {
  const fairId = document.getElementById("manage-halls").dataset.fairId;
  hallsTable.querySelectorAll("tr[data-hall-id]").forEach((row) => {
    const url = "/api/v1/halls/" + row.dataset.hallId;
    const position = Number(row.dataset.position);
    row.querySelector(".hall-save").addEventListener("click", async () => {
      const body = {
        name: row.querySelector(".hall-name").value.trim(),
        auto_on_air: row.querySelector(".hall-auto").checked,
        grace_minutes: Number(row.querySelector(".hall-grace").value),
      };
      if (await call("PATCH", url, body)) say(text.saved);
    });
    row.querySelector(".hall-up").addEventListener("click", async () => {
      if (await call("PATCH", url, { position: position - 1 })) reloadSoon(text.saved);
    });
    row.querySelector(".hall-down").addEventListener("click", async () => {
      if (await call("PATCH", url, { position: position + 1 })) reloadSoon(text.saved);
    });
  });
  document.getElementById("hall-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("new-hall-name").value.trim();
    if (await call("POST", "/api/v1/fairs/" + fairId + "/halls", { name })) {
      reloadSoon(text.created);
    }
  });
}

// ---- a day of a hall: the slot forms and the overlap rule ------------------------------------

/** The slot a form describes, as ISO times on the page's day in the fair's clock. */
function slotOf(form) {
  const at = (name) => config.day + "T" + form.elements[name].value + ":00" + config.offset;
  return { starts_at: at("start"), ends_at: at("end") };
}

/** The hall's showcases of the day that a slot overlaps: each starts before the other ends
 * (touching slots are fine), as the server's rule says (livehalls.service._refuse_overlap). */
function overlapping(slot, besides) {
  const starts = Date.parse(slot.starts_at);
  const ends = Date.parse(slot.ends_at);
  return config.showcases.filter((other) => other.id !== besides &&
    Date.parse(other.starts_at) < ends && Date.parse(other.ends_at) > starts);
}

function timeOf(iso) {
  return new Date(iso).toLocaleTimeString("zh-CN", {
    hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Shanghai",
  });
}

/** Show the overlap (or a slot that ends before it starts) before saving; true when clear. */
function checkSlot(form) {
  const warning = form.querySelector(".overlap");
  const button = form.querySelector("button[type=submit]");
  const slot = slotOf(form);
  const besides = form.dataset.showcaseId ? Number(form.dataset.showcaseId) : null;
  const sameHall = !form.elements.hall_id || Number(form.elements.hall_id.value) === config.hall_id;
  let problem = "";
  if (!(Date.parse(slot.ends_at) > Date.parse(slot.starts_at))) {
    problem = text.bad_slot;
  } else if (sameHall) {
    const clashes = overlapping(slot, besides);
    if (clashes.length) {
      problem = text.overlap + clashes.map((other) =>
        `${timeOf(other.starts_at)}–${timeOf(other.ends_at)} ${other.title}`).join("；");
    }
  }
  warning.textContent = problem;
  button.disabled = Boolean(problem);
  return !problem;
}

/** Suggest the first hour after the day's last showcase, when the default slot is taken. */
function suggestSlot(form) {
  if (!config.showcases.length || !overlapping(slotOf(form), null).length) return;
  const last = config.showcases[config.showcases.length - 1];
  const start = timeOf(last.ends_at);
  const [hours, minutes] = start.split(":").map(Number);
  if (hours >= 23) return;
  form.elements.start.value = start;
  form.elements.end.value = String(hours + 1).padStart(2, "0") + ":" + String(minutes).padStart(2, "0");
}

if (config) {
  suggestSlot(document.getElementById("schedule-form"));
  document.querySelectorAll(".slot-form").forEach((form) => {
    form.addEventListener("input", () => checkSlot(form));
    checkSlot(form);
  });

  document.getElementById("schedule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (!checkSlot(form)) return;
    const body = { project_id: Number(form.elements.project_id.value), ...slotOf(form) };
    if (await call("POST", "/api/v1/halls/" + config.hall_id + "/showcases", body)) {
      reloadSoon(text.scheduled);
    }
  });

  document.querySelectorAll(".move-form").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!checkSlot(form)) return;
      const body = { ...slotOf(form), hall_id: Number(form.elements.hall_id.value) };
      if (await call("PATCH", "/api/v1/showcases/" + form.dataset.showcaseId, body)) {
        reloadSoon(text.moved);
      }
    });
  });

  document.querySelectorAll("#day-list > li").forEach((item) => {
    const id = Number(item.dataset.showcaseId);
    const onAir = item.querySelector(".on-air");
    if (onAir) {
      onAir.addEventListener("click", async () => {
        const url = "/api/v1/halls/" + config.hall_id + "/on-air";
        if (await call("POST", url, { showcase_id: id })) {
          reloadSoon(text.on_air + onAir.dataset.title);
        }
      });
    }
    const offAir = item.querySelector(".off-air");
    if (offAir) {
      offAir.addEventListener("click", async () => {
        const url = "/api/v1/halls/" + config.hall_id + "/on-air";
        if (await call("POST", url, { showcase_id: null })) reloadSoon(text.off_air);
      });
    }
    item.querySelector(".cancel").addEventListener("click", async () => {
      if (!window.confirm(text.confirm_cancel)) return;
      if (await call("DELETE", "/api/v1/showcases/" + id) !== null) reloadSoon(text.cancelled);
    });
  });
}

// ---- push details: shown on demand, copied, regenerated ---------------------------------------

function showPush(panel, details) {
  for (const field of ["server", "stream_key", "url"]) {
    panel.querySelector(".push-" + field).value = details[field];
  }
  const expires = new Date(details.expires_at).toLocaleString("zh-CN", {
    hour12: false, timeZone: "Asia/Shanghai",
  });
  panel.querySelector(".push-expires").textContent =
    (details.server ? "" : text.no_server + " ") + text.expires + " " + expires;
}

document.querySelectorAll(".push").forEach((push) => {
  const url = "/api/v1/showcases/" + push.dataset.showcaseId + "/push";
  const panel = push.querySelector(".push-details");
  const toggle = push.querySelector(".push-show");
  toggle.addEventListener("click", async () => {
    if (!panel.hidden) {
      panel.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      return;
    }
    const details = await call("GET", url);
    if (!details) return;
    showPush(panel, details);
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
  });
  toggle.disabled = false;
  const regenerate = push.querySelector(".push-regenerate");
  if (regenerate) {
    regenerate.addEventListener("click", async () => {
      if (!window.confirm(text.confirm_regenerate)) return;
      const details = await call("POST", url + "/regenerate");
      if (!details) return;
      showPush(panel, details);
      say(text.regenerated);
    });
  }
  push.querySelectorAll(".copy").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch {
        document.execCommand("copy"); // without the clipboard API (plain http): the selection
      }
      button.textContent = text.copied;
    });
  });
});
