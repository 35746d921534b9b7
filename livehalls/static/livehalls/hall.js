/* A live hall: joins the hall over the /live socket and keeps the page live.
 *
 * Every text that came from a user (chat lines, names, project titles) is set with
 * textContent, never as HTML. After each (re)connect the join_hall acknowledgement is a fresh
 * snapshot: the hall, the fair's totals and the last chat lines. `totals` messages are full
 * snapshots with a seq; several server processes may deliver them out of order, so only a
 * higher seq is shown.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("hall-config").textContent);
  const text = JSON.parse(document.getElementById("hall-text").textContent);
  const hallId = config.hall.id;
  const fairId = config.fair_id;
  const page = document.querySelector(".hall");
  const TICKER_LENGTH = 30;
  const CHAT_LENGTH = 100;

  // ---- money, as fair/money.py formats it, on decimal strings (no floating point) ----------

  function fenDigits(yuan) {
    const [whole, cents = ""] = String(yuan).split(".");
    return (whole + (cents + "00").slice(0, 2)).replace(/^0+(?=\d)/, "");
  }

  function increment(digits) {
    const out = digits.split("");
    let i = out.length - 1;
    while (i >= 0 && out[i] === "9") out[i--] = "0";
    if (i < 0) out.unshift("1");
    else out[i] = String.fromCharCode(out[i].charCodeAt(0) + 1);
    return out.join("");
  }

  function stripZeros(digits) {
    return digits.replace(/^0+(?=\d)/, "");
  }

  /** "38568300.00" -> "3856.83" (万元, two decimals, half up). */
  function formatWan(yuan) {
    const fen = fenDigits(yuan).padStart(5, "0");
    let hundredths = fen.slice(0, -4);
    if (fen[fen.length - 4] >= "5") hundredths = increment(hundredths);
    hundredths = hundredths.padStart(3, "0");
    return stripZeros(hundredths.slice(0, -2)) + "." + hundredths.slice(-2);
  }

  /** "120000.5" -> "120,000.50". */
  function formatYuan(yuan) {
    const fen = fenDigits(yuan).padStart(3, "0");
    return stripZeros(fen.slice(0, -2)).replace(/\B(?=(\d{3})+$)/g, ",") + "." + fen.slice(-2);
  }

  function setText(id, value) {
    const element = document.getElementById(id);
    if (element) element.textContent = value;
  }

  // ---- figures and totals -------------------------------------------------------------------

  function applyViewers(figures) {
    if (figures.hall_id !== hallId) return;
    setText("figure-viewers", String(figures.viewers));
    setText("figure-visits", String(figures.visits));
    setText("figure-peak", String(figures.peak_viewers));
    setText("figure-fair-viewers", String(figures.fair.viewers));
  }

  let seq = -1;

  function applyTotals(totals) {
    if (totals.fair_id !== fairId || totals.seq <= seq) return;
    seq = totals.seq;
    setText("totals-wan", formatWan(totals.amount));
    setText("totals-deals", String(totals.deal_count));
    setText("totals-projects", String(totals.project_count));
    setText("totals-buyers", String(totals.buyer_count));
  }

  // ---- the ticker of new intents --------------------------------------------------------------

  const ticker = document.getElementById("ticker");
  const seenDeals = new Set();

  function addDeal(deal) {
    if (seenDeals.has(deal.id)) return;
    seenDeals.add(deal.id);
    const item = document.createElement("li");
    if (deal.hall_id === hallId) item.classList.add("from-here");
    const amount = document.createElement("strong");
    amount.textContent = "¥" + formatYuan(deal.amount);
    const title = document.createElement("span");
    title.className = "ticker-title";
    title.textContent = deal.project.title;
    const where = document.createElement("span");
    where.className = "muted";
    where.textContent = (config.provinces[deal.buyer_province] || deal.buyer_province) +
      (deal.hall_id === hallId ? " · " + text.hall_label : "");
    item.append(amount, " ", title, " ", where);
    ticker.prepend(item);
    while (ticker.children.length > TICKER_LENGTH) ticker.lastElementChild.remove();
    document.getElementById("ticker-empty").hidden = true;
  }

  // ---- what is on air -------------------------------------------------------------------------

  const onAir = document.getElementById("on-air");
  const badge = document.getElementById("live-badge");
  const player = document.getElementById("player");
  const playerIdle = document.getElementById("player-idle");
  let hls = null;
  let playing = null;

  function play(source, onAirNow) {
    playerIdle.textContent = onAirNow ? text.no_video : text.no_show;
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
    if (/\.m3u8(\?|$)/.test(source) && window.Hls && Hls.isSupported()) {
      hls = new Hls();
      hls.loadSource(source);
      hls.attachMedia(player);
    } else {
      player.src = source; // MP4, or HLS where the browser plays it natively (Safari)
    }
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
    // The hall's own stream plays whatever is on air; without one, the project's video.
    play(project ? config.hall.stream_url || project.video_url : null, Boolean(project));
    if (!project) return;
    const title = document.getElementById("on-air-title");
    title.textContent = project.title;
    title.href = config.project_url.replace(/\/0$/, "/" + project.id);
    setText("on-air-organisation", project.organisation);
    setText("on-air-province", config.provinces[project.province] || project.province);
    setText("on-air-summary", project.summary);
    setText("on-air-price", formatYuan(project.price));
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

  function chatLine(line) {
    const item = document.createElement("li");
    item.dataset.id = String(line.id);
    const who = document.createElement("span");
    who.className = "chat-user";
    who.textContent = line.user.name;
    const words = document.createElement("span");
    words.className = "chat-text";
    words.textContent = line.text;
    item.append(who, words);
    if (config.moderator) {
      const hide = document.createElement("button");
      hide.type = "button";
      hide.className = "link-button chat-hide";
      hide.textContent = text.hide;
      hide.addEventListener("click", () => post("/api/v1/chat/" + line.id + "/hide", null));
      item.append(hide);
    }
    return item;
  }

  function addChat(line) {
    if (line.hall_id !== hallId || chatLines.querySelector('li[data-id="' + line.id + '"]')) return;
    chatLines.append(chatLine(line));
    while (chatLines.children.length > CHAT_LENGTH) chatLines.firstElementChild.remove();
    chatLines.scrollTop = chatLines.scrollHeight;
  }

  function showChat(lines) {
    chatLines.replaceChildren(...lines.map(chatLine));
    chatLines.scrollTop = chatLines.scrollHeight;
  }

  function hideChat(message) {
    if (message.hall_id !== hallId) return;
    const item = chatLines.querySelector('li[data-id="' + message.id + '"]');
    if (item) item.remove();
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
      socket.timeout(5000).emit("chat", { hall_id: hallId, text: words }, (timedOut, ack) => {
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

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: body === null ? null : JSON.stringify(body),
    }).then((response) => response.json().then((data) => {
      if (!response.ok && controlStatus) {
        controlStatus.textContent = text.control_failed + data.error.message;
      }
      return data;
    }));
  }

  document.querySelectorAll(".put-on-air").forEach((button) => {
    button.addEventListener("click", () => {
      post("/api/v1/halls/" + hallId + "/on-air", { showcase_id: Number(button.dataset.showcaseId) });
    });
  });
  const offAir = document.getElementById("take-off-air");
  if (offAir) {
    offAir.addEventListener("click", () => post("/api/v1/halls/" + hallId + "/on-air", { showcase_id: null }));
  }

  // ---- the connection -----------------------------------------------------------------------------

  const socket = io("/live", { transports: ["websocket", "polling"] });

  function setState(state) {
    page.dataset.state = state;
  }

  socket.on("connect", () => {
    socket.timeout(5000).emit("join_hall", { hall_id: hallId }, (timedOut, ack) => {
      if (timedOut) return; // gone again; the next connect joins again
      if (!ack.ok) {
        setState("refused");
        return;
      }
      // A fresh snapshot: what was missed while disconnected is in it.
      config.hall = ack.hall;
      applyViewers({ hall_id: hallId, ...ack.hall, fair: ack.hall.fair });
      applyOnAir(ack.hall.on_air);
      applyTotals(ack.totals);
      showChat(ack.chat);
      setState("live");
    });
  });
  socket.on("disconnect", () => setState("reconnecting"));
  // Each message is a whole snapshot: one that skips seqs (coalesced, or after a lost
  // message) is still the latest, so a gap needs no extra read.
  socket.on("totals", applyTotals);
  socket.on("deals", (message) => {
    if (message.fair_id === fairId) message.deals.forEach(addDeal);
  });
  socket.on("viewers", applyViewers);
  socket.on("on_air", (message) => {
    if (message.hall_id === hallId) applyOnAir(message.showcase);
  });
  socket.on("chat", addChat);
  socket.on("chat_hidden", hideChat);

  applyOnAir(config.hall.on_air);
  showChat(config.chat);
})();
