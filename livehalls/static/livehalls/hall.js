/* A live hall: joins the hall over the /live socket (fair/static/js/live.js) and keeps the page
 * live: the player, the card on air, the figures, the fair's totals, the ticker and the chat.
 *
 * As on the big screen, a message only changes `view` and asks for an animation frame, which
 * draws what changed once; the ticker keeps 30 rows and the chat 100 lines whatever arrives.
 * Every text that came from a user (chat lines, names, project titles) is set with textContent,
 * never as HTML. After each (re)connect the join_hall acknowledgement is a fresh snapshot: the
 * hall, the fair's totals, the last intents and the last chat lines.
 */
import { callApi, errorMessage } from "/static/js/api.js";
import { frameScheduler } from "/static/js/frame.js";
import { openLive } from "/static/js/live.js";
import { grouped, wan } from "/static/js/money.js";
import { Ticker } from "/static/js/ticker.js";

const config = JSON.parse(document.getElementById("hall-config").textContent);
const text = JSON.parse(document.getElementById("hall-text").textContent);
const hallId = config.hall.id;
const fairId = config.fair_id;
const page = document.querySelector(".hall");
const TICKER_ROWS = 30;
const CHAT_LENGTH = 100;
/** Screen readers hear the totals at most this often, not on every update. */
const ANNOUNCE_EVERY_MS = 30_000;

const view = {
  state: "connecting",
  totals: null,
  totalsDue: false,
  figures: null,
  chatWaiting: [],
  chatReplaced: false,
  paused: false,
};
const requestDraw = frameScheduler(draw);

function setText(id, value) {
  const element = document.getElementById(id);
  if (element && element.textContent !== value) element.textContent = value;
}

// ---- figures and totals -------------------------------------------------------------------

function takeViewers(figures) {
  if (figures.hall_id !== hallId) return;
  view.figures = figures;
  requestDraw();
}

function drawFigures() {
  setText("figure-viewers", String(view.figures.viewers));
  setText("figure-visits", String(view.figures.visits));
  setText("figure-peak", String(view.figures.peak_viewers));
  setText("figure-fair-viewers", String(view.figures.fair.viewers));
  view.figures = null;
}

function drawTotals() {
  const totals = view.totals;
  setText("totals-wan", wan(totals.amount));
  setText("totals-deals", String(totals.deal_count));
  setText("totals-projects", String(totals.project_count));
  setText("totals-buyers", String(totals.buyer_count));
  page.dataset.seq = String(totals.seq);
  announceTotals();
}

// The visible figures are not a live region (they change too often to be read out); one
// polite status says the latest totals, at most every ANNOUNCE_EVERY_MS.
const announcer = document.getElementById("totals-announce");
let announcedAt = 0;
let announceTimer = null;

function announceTotals() {
  if (!announcer || announceTimer !== null) return;
  const wait = Math.max(0, announcedAt + ANNOUNCE_EVERY_MS - Date.now());
  announceTimer = setTimeout(() => {
    announceTimer = null;
    if (view.paused || !view.totals) return;
    announcedAt = Date.now();
    announcer.textContent = text.announce.replace("__AMOUNT__", wan(view.totals.amount))
      .replace("__COUNT__", String(view.totals.deal_count));
  }, announcedAt === 0 ? 0 : wait);
}

// ---- the ticker of new intents --------------------------------------------------------------

function markSecured(item) {
  const badge = document.createElement("span");
  badge.className = "badge badge-secured";
  badge.textContent = text.secured;
  item.append(" ", badge);
}

function tickerRow(deal) {
  const item = document.createElement("li");
  item.dataset.dealId = String(deal.id);
  if (deal.hall_id === hallId) item.classList.add("from-here");
  const amount = document.createElement("strong");
  amount.textContent = "¥" + grouped(deal.amount);
  const title = document.createElement("span");
  title.className = "ticker-title";
  title.textContent = deal.project.title;
  const where = document.createElement("span");
  where.className = "muted";
  where.textContent = (config.provinces[deal.buyer_province] || deal.buyer_province) +
    (deal.hall_id === hallId ? " · " + text.hall_label : "");
  item.append(amount, " ", title, " ", where);
  if (deal.secured) markSecured(item);
  return item;
}

const ticker = new Ticker(document.getElementById("ticker"), {
  capacity: TICKER_ROWS, row: tickerRow, markSecured,
});
const tickerEmpty = document.getElementById("ticker-empty");

// ---- what is on air -------------------------------------------------------------------------

const onAir = document.getElementById("on-air");
const badge = document.getElementById("live-badge");
const player = document.getElementById("player");
const playerIdle = document.getElementById("player-idle");
let hls = null;
let playing = null;

function play(source, onAirNow) {
  const idle = onAirNow ? text.no_video : text.no_show;
  if (playerIdle.textContent !== idle) playerIdle.textContent = idle;
  if (source === playing) return;
  playing = source;
  if (hls) {
    hls.destroy();
    hls = null;
  }
  player.removeAttribute("src");
  playerIdle.hidden = Boolean(source);
  player.hidden = !source;
  if (!source) {
    player.load();
    return;
  }
  if (/\.m3u8(\?|$)/.test(source)) {
    loadHls().then((Hls) => {
      if (playing === source) stream(source, Hls);
    });
    return;
  }
  player.src = source;
  // A project's video (the demo's are a few seconds long) plays on while it is on air.
  player.loop = true;
  player.play().catch(() => undefined); // autoplay may be refused; the controls remain
}

// hls.js is 540 KB: a hall fetches it only when it has a live stream to play, so that a phone
// on a slow network draws the hall (and plays a project's MP4) without waiting for it.
let hlsLoading = null;

function loadHls() {
  hlsLoading ??= new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = config.hls_src;
    script.onload = () => resolve(window.Hls || null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
  return hlsLoading;
}

function stream(source, Hls) {
  if (Hls && Hls.isSupported()) {
    // A stream that has just started has no playlist for a second or two: try again.
    hls = new Hls({ liveSyncDurationCount: 2, manifestLoadingMaxRetry: 6 });
    hls.on(Hls.Events.ERROR, (event, data) => {
      if (!data.fatal) return;
      const failed = hls;
      setTimeout(() => {
        if (hls !== failed) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) failed.recoverMediaError();
        else failed.loadSource(source);
      }, 1000);
    });
    hls.loadSource(source);
    hls.attachMedia(player);
  } else {
    player.src = source; // where the browser plays HLS itself (Safari)
  }
  player.loop = false;
  player.play().catch(() => undefined); // autoplay may be refused; the controls remain
}

function applyOnAir(showcase) {
  const project = showcase && showcase.project;
  onAir.hidden = !project;
  badge.textContent = project ? text.live : text.idle;
  badge.classList.toggle("is-live", Boolean(project));
  document.querySelectorAll("#schedule li").forEach((item) => {
    if (showcase && Number(item.dataset.showcaseId) === showcase.id) {
      item.setAttribute("aria-current", "true");
    } else {
      item.removeAttribute("aria-current");
    }
  });
  // The showcase's live stream from the media server; else the hall's own stream; else the
  // project's video. A stream that stops takes the showcase off air: the player says so.
  if (!project && playing) playerIdle.dataset.ended = "true";
  if (project) delete playerIdle.dataset.ended;
  play(project ? showcase.live_url || config.hall.stream_url || project.video_url : null,
    Boolean(project));
  if (!project && playerIdle.dataset.ended) playerIdle.textContent = text.ended;
  if (!project) return;
  const title = document.getElementById("on-air-title");
  title.textContent = project.title;
  title.href = config.project_url.replace(/\/0$/, "/" + project.id);
  setText("on-air-organisation", project.organisation);
  setText("on-air-province", config.provinces[project.province] || project.province);
  setText("on-air-summary", project.summary);
  setText("on-air-price", grouped(project.price));
  const form = onAir.querySelector("form.intent-form");
  if (form) {
    const action = form.getAttribute("action").replace(/\/projects\/\d+\//, "/projects/" + project.id + "/");
    if (action !== form.getAttribute("action")) {
      form.setAttribute("action", action);
      // Another project: a fresh form and a fresh Idempotency-Key.
      form.querySelector(".intent-again").click();
    }
  }
}

// ---- chat ------------------------------------------------------------------------------------

const chatLines = document.getElementById("chat-lines");
const chatShown = new Map(); // id -> the line's element, at most CHAT_LENGTH

// Chat lines carry the time they were said, in the fair's time zone.
const chatClock = new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", {
  hour: "2-digit", minute: "2-digit", hour12: false, timeZone: config.timezone || "Asia/Shanghai",
});

function chatLine(line) {
  const item = document.createElement("li");
  item.dataset.id = String(line.id);
  if (line.at) {
    const when = document.createElement("time");
    when.className = "chat-time";
    when.dateTime = line.at;
    when.textContent = chatClock.format(new Date(line.at));
    item.append(when);
  }
  const who = document.createElement("span");
  who.className = "chat-user";
  who.textContent = line.user.name;
  const words = document.createElement("span");
  words.className = "chat-text";
  words.textContent = line.text;
  item.append(who, words);
  if (config.moderator) item.append(...moderation(line));
  return item;
}

// ---- the organiser's chat moderation: hide a line, mute or ban its author, each undoable ------

const moderationStatus = document.getElementById("moderation-status");

function moderationButton(label, name, className, act) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link-button " + className;
  button.textContent = label;
  button.setAttribute("aria-label", label + ": " + name);
  button.addEventListener("click", act);
  return button;
}

/** Say what was done, with a button that undoes it. */
function moderated(message, undo) {
  const undoButton = document.createElement("button");
  undoButton.type = "button";
  undoButton.className = "link-button moderation-undo";
  undoButton.textContent = text.undo;
  undoButton.addEventListener("click", async () => {
    undoButton.disabled = true;
    if (await undo()) moderationStatus.textContent = text.undone;
    else undoButton.disabled = false;
  });
  moderationStatus.replaceChildren(message + " ", undoButton);
}

async function moderate(method, url, body) {
  let answer;
  try {
    answer = await callApi(method, url, { body });
  } catch {
    moderationStatus.textContent = text.control_failed + text.offline;
    return false;
  }
  if (!answer.ok) moderationStatus.textContent = text.control_failed + (errorMessage(answer.data) || "");
  return answer.ok;
}

function moderation(line) {
  const name = line.user.name;
  const named = (template) => template.replace("__NAME__", name);
  const sanctions = "/api/v1/halls/" + hallId + "/chat-sanctions";
  const lift = () => moderate("DELETE", sanctions + "/" + line.user.id);
  const buttons = [
    // Everyone stops seeing the line: ask first.
    moderationButton(text.hide, name + " " + line.text, "chat-hide", async () => {
      if (!window.confirm(text.hide_confirm)) return;
      if (await moderate("POST", "/api/v1/chat/" + line.id + "/hide")) {
        moderated(text.hidden_done, () => moderate("POST", "/api/v1/chat/" + line.id + "/show"));
      }
    }),
  ];
  if (line.user.id === config.user_id) return buttons;
  buttons.push(
    moderationButton(text.mute, name, "chat-mute", async () => {
      if (!window.confirm(named(text.mute_confirm))) return;
      if (await moderate("POST", sanctions, { user_id: line.user.id, kind: "mute" })) {
        moderated(named(text.muted_done), lift);
      }
    }),
    moderationButton(text.ban, name, "chat-ban", async () => {
      if (!window.confirm(named(text.ban_confirm))) return;
      if (await moderate("POST", sanctions, { user_id: line.user.id, kind: "ban" })) {
        moderated(named(text.banned_done), lift);
      }
    }),
  );
  return buttons;
}

function addChat(line) {
  if (line.hall_id !== hallId || chatShown.has(line.id)) return;
  view.chatWaiting.push(line);
  if (view.chatWaiting.length > CHAT_LENGTH) view.chatWaiting.shift();
  requestDraw();
}

/** A join's snapshot of the last lines replaces what the page shows. */
function showChat(lines) {
  view.chatWaiting = lines.slice(-CHAT_LENGTH);
  view.chatReplaced = true;
  requestDraw();
}

function drawChat() {
  if (view.chatReplaced) {
    chatShown.clear();
    chatLines.replaceChildren();
    view.chatReplaced = false;
  }
  for (const line of view.chatWaiting) {
    if (chatShown.has(line.id)) continue;
    const item = chatLine(line);
    chatShown.set(line.id, item);
    // A line shown again after its hiding was undone goes back to its place among the others.
    const later = [...chatLines.children].find((other) => Number(other.dataset.id) > line.id);
    chatLines.insertBefore(item, later || null);
  }
  view.chatWaiting = [];
  while (chatShown.size > CHAT_LENGTH) {
    const [oldest, item] = chatShown.entries().next().value;
    chatShown.delete(oldest);
    item.remove();
  }
  chatLines.scrollTop = chatLines.scrollHeight;
}

function hideChat(message) {
  if (message.hall_id !== hallId) return;
  view.chatWaiting = view.chatWaiting.filter((line) => line.id !== message.id);
  const item = chatShown.get(message.id);
  if (item) {
    chatShown.delete(message.id);
    item.remove();
  }
}

const chatForm = document.getElementById("chat-form");
if (chatForm) {
  const input = document.getElementById("chat-text");
  const status = document.getElementById("chat-status");
  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const words = input.value.trim();
    if (!words) return;
    status.textContent = "";
    live.socket.timeout(5000).emit("chat", { hall_id: hallId, text: words }, (timedOut, ack) => {
      if (timedOut || !ack.ok) {
        status.textContent = text.chat_failed + (timedOut ? text.offline
          : text.errors[ack.error.code] || ack.error.message);
        return;
      }
      input.value = "";
    });
  });
}

// ---- the organiser's controls -----------------------------------------------------------------

const controlStatus = document.getElementById("control-status");

async function post(url, body) {
  let answer;
  try {
    answer = await callApi("POST", url, { body: body === null ? undefined : body });
  } catch {
    if (controlStatus) controlStatus.textContent = text.control_failed + text.offline;
    return false;
  }
  if (!answer.ok && controlStatus) {
    controlStatus.textContent = text.control_failed + (errorMessage(answer.data) || "");
    return;
  }
  // Visible feedback: what the organiser's click did (the hall's own badge follows too).
  if (controlStatus && answer.ok && answer.data && "on_air" in answer.data) {
    const project = answer.data.on_air && answer.data.on_air.project;
    controlStatus.textContent = project ? text.on_air_done.replace("__TITLE__", project.title)
      : text.off_air_done;
  }
  return answer.ok;
}

document.querySelectorAll(".put-on-air").forEach((button) => {
  button.addEventListener("click", async () => {
    await post("/api/v1/halls/" + hallId + "/on-air",
      { showcase_id: Number(button.dataset.showcaseId) });
  });
});
const offAir = document.getElementById("take-off-air");
if (offAir) {
  offAir.addEventListener("click", async () => {
    await post("/api/v1/halls/" + hallId + "/on-air", { showcase_id: null });
  });
}

// ---- drawing and the connection ---------------------------------------------------------------

// WCAG 2.2.2: a person may stop what moves by itself; messages still arrive and are shown
// at once on resuming.
const pauseButton = document.getElementById("pause-live");
if (pauseButton) {
  pauseButton.addEventListener("click", () => {
    view.paused = !view.paused;
    pauseButton.setAttribute("aria-pressed", String(view.paused));
    pauseButton.textContent = view.paused ? text.resume : text.pause;
    page.dataset.paused = String(view.paused);
    if (!view.paused) requestDraw();
  });
}

function draw() {
  if (page.dataset.state !== view.state) page.dataset.state = view.state;
  if (view.paused) return;
  if (view.totalsDue) {
    view.totalsDue = false;
    drawTotals();
  }
  if (view.figures) drawFigures();
  ticker.draw();
  tickerEmpty.hidden = ticker.size > 0;
  if (view.chatReplaced || view.chatWaiting.length) drawChat();
}

const live = openLive({
  fairId,
  join: ["join_hall", { hall_id: hallId }],
  onJoined(ack) {
    config.hall = ack.hall;
    takeViewers({ hall_id: hallId, ...ack.hall, fair: ack.hall.fair });
    applyOnAir(ack.hall.on_air);
    showChat(ack.chat);
  },
  onTotals(totals) {
    view.totals = totals;
    view.totalsDue = true;
    requestDraw();
  },
  onDeals(deals) {
    ticker.add(deals);
    requestDraw();
  },
  onSecured(dealIds) {
    ticker.secure(dealIds);
    requestDraw();
  },
  onState(state) {
    view.state = state;
    requestDraw();
  },
  events: {
    viewers: takeViewers,
    on_air: (message) => {
      if (message.hall_id === hallId) applyOnAir(message.showcase);
    },
    chat: addChat,
    chat_hidden: hideChat,
  },
});

applyOnAir(config.hall.on_air);
showChat(config.chat);
