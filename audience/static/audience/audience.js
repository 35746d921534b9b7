/* The audience in the browser: the first-visit notice, favourite buttons (收藏), share links,
 * and the beacon (cards seen in a list, seconds watched in a hall), sent with sendBeacon in
 * batches. Under Do-Not-Track or Global Privacy Control the beacon sends nothing.
 */
import { callApi } from "/static/js/api.js";

const BEACON = "/api/v1/events";
const MAX_BATCH = 500;
const refused = navigator.doNotTrack === "1" || navigator.globalPrivacyControl === true;
const queue = [];

/** Queue an event for the beacon: {kind, fair_id, object_type, object_id, seconds?}. */
export function track(event) {
  if (refused) return;
  queue.push({ ...event, at: new Date().toISOString() });
  if (queue.length >= MAX_BATCH) sendQueued();
}

function sendQueued() {
  while (queue.length) {
    const batch = queue.splice(0, MAX_BATCH);
    const body = new Blob([JSON.stringify({ events: batch })], { type: "application/json" });
    if (!navigator.sendBeacon || !navigator.sendBeacon(BEACON, body)) {
      fetch(BEACON, { method: "POST", body, keepalive: true, credentials: "same-origin" });
    }
  }
}
setInterval(sendQueued, 5000);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") sendQueued();
});

// ---- the notice of the first visit ----------------------------------------------------------

const notice = document.getElementById("privacy-notice");
if (notice) {
  if (!document.cookie.split("; ").includes("fair_notice=seen")) notice.hidden = false;
  notice.querySelector("button").addEventListener("click", () => {
    document.cookie = "fair_notice=seen; max-age=31536000; path=/; samesite=lax";
    notice.hidden = true;
  });
}

// ---- favourites ----------------------------------------------------------------------------

const buttons = document.querySelectorAll("[data-favourite]");

function show(button, on) {
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.querySelector(".fav-label").textContent = on ? button.dataset.on : button.dataset.off;
}

if (buttons.length) {
  callApi("GET", "/api/v1/me/favourites").then(({ ok, data }) => {
    const kept = new Set(ok ? data.items.map((item) => item.id) : []);
    for (const button of buttons) {
      show(button, kept.has(Number(button.dataset.favourite)));
      button.disabled = false;
    }
  });
}
for (const button of buttons) {
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    const on = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    const url = `/api/v1/projects/${button.dataset.favourite}/favourite`;
    const { ok } = await callApi(on ? "PUT" : "DELETE", url);
    if (ok) show(button, on);
    button.disabled = false;
  });
}

// ---- share links ---------------------------------------------------------------------------

for (const button of document.querySelectorAll("[data-share]")) {
  button.addEventListener("click", async () => {
    const { ok, data } = await callApi("POST", `/api/v1/projects/${button.dataset.share}/share`);
    const output = document.getElementById("share-link");
    if (ok && output) {
      output.value = data.url;
      output.hidden = false;
      output.select();
    }
  });
}

// ---- impressions: cards seen in a list -----------------------------------------------------

const cards = document.querySelectorAll("[data-impression]");
if (cards.length && "IntersectionObserver" in window) {
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const card = entry.target;
      seen.unobserve(card);
      track({ kind: "impression", fair_id: Number(card.dataset.fair),
              object_type: "project", object_id: Number(card.dataset.impression) });
    }
  }, { threshold: 0.5 });
  for (const card of cards) seen.observe(card);
}
