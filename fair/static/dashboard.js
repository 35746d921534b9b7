/* The organiser's big screen (数据大屏): totals, the intents ticker and the charts, kept live.
 *
 * It reads GET /api/v1/fairs/{id}/totals at once, then joins the fair's dashboard on the /live
 * socket and applies every `totals` snapshot newer than the one shown (snapshots from several
 * server processes may arrive out of order, so the highest `seq` wins) and every `deals`
 * message to the ticker. After a lost connection it joins again and re-reads the totals.
 *
 * Amounts arrive as fen-exact yuan strings ("38568300.00"); they are formatted here with string
 * arithmetic only, never through a float, exactly as fair/money.py does on the server.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const fairId = config.fair_id;
  const text = config.strings;
  const TICKER_LENGTH = 12;
  const TOP_PROVINCES = 12;

  let shownSeq = -1;
  let everConnected = false;
  let halls = [];
  let lastTotals = null;

  // ---- money, as strings ---------------------------------------------------------------

  const AMOUNT = /^(\d+)(?:\.(\d{1,2}))?$/;

  function stripZeros(digits) {
    return digits.replace(/^0+(?=\d)/, "");
  }

  function fenDigits(yuan) {
    const match = AMOUNT.exec(yuan);
    if (!match) throw new Error("not an amount: " + yuan);
    return stripZeros(match[1] + (match[2] || "").padEnd(2, "0"));
  }

  function increment(digits) {
    const out = digits.split("");
    let i = out.length - 1;
    while (i >= 0 && out[i] === "9") out[i--] = "0";
    if (i < 0) out.unshift("1");
    else out[i] = String.fromCharCode(out[i].charCodeAt(0) + 1);
    return out.join("");
  }

  function group(digits) {
    return digits.replace(/\B(?=(\d{3})+$)/g, ",");
  }

  /** "38568300.00" -> "3856.83": 万元 with two decimals, half up, as money.format_wan. */
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
    return group(stripZeros(fen.slice(0, -2))) + "." + fen.slice(-2);
  }

  // ---- figures -------------------------------------------------------------------------

  function setFigure(id, value) {
    const element = document.getElementById(id);
    if (element.textContent === value) return;
    element.textContent = value;
    element.classList.add("bump");
    window.setTimeout(() => element.classList.remove("bump"), 120);
  }

  function applyTotals(totals) {
    if (!totals || totals.fair_id !== fairId || totals.seq <= shownSeq) return;
    shownSeq = totals.seq;
    lastTotals = totals;
    setFigure("kpi-amount", formatWan(totals.amount));
    setFigure("kpi-projects", group(String(totals.project_count)));
    setFigure("kpi-deals", group(String(totals.deal_count)));
    setFigure("kpi-buyers", group(String(totals.buyer_count)));
    drawCharts();
  }

  function readTotals() {
    return fetch("/api/v1/fairs/" + fairId + "/totals", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    })
      .then((response) => (response.ok ? response.json() : null))
      .then(applyTotals)
      .catch(() => undefined); // the socket's next snapshot or reconnect tries again
  }

  // ---- ticker --------------------------------------------------------------------------

  const ticker = document.getElementById("ticker");
  const clockFormat = new Intl.DateTimeFormat(config.locale === "en" ? "en-GB" : "zh-CN", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    timeZone: config.timezone,
  });

  const tickerDeals = new Map();

  function tickerMeta(deal) {
    const hall = deal.hall_id === null ? null : halls.find((each) => each.id === deal.hall_id);
    return [config.provinces[deal.buyer_province] || deal.buyer_province, hall ? hall.name : null]
      .filter(Boolean).join(" · ");
  }

  /** Hall names arrive with the join acknowledgement, possibly after the first intents. */
  function renameHalls() {
    for (const item of ticker.children) {
      item.querySelector(".meta").textContent = tickerMeta(tickerDeals.get(item.dataset.dealId));
    }
  }

  function tickerItem(deal) {
    const item = document.createElement("li");
    item.dataset.dealId = String(deal.id);
    tickerDeals.set(item.dataset.dealId, deal);
    const time = document.createElement("time");
    time.dateTime = deal.created_at;
    time.textContent = clockFormat.format(new Date(deal.created_at));
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = deal.project.title; // text, never HTML: titles are user input
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = tickerMeta(deal);
    const amount = document.createElement("span");
    amount.className = "amount";
    amount.textContent = "¥" + formatYuan(deal.amount);
    item.append(time, title, meta, amount);
    return item;
  }

  /** Put intents into the ticker, newest on top, each once, whatever order they come in. */
  function addDeals(deals) {
    for (const deal of deals) {
      if (ticker.querySelector('[data-deal-id="' + deal.id + '"]')) continue;
      const older = Array.from(ticker.children).find((item) => Number(item.dataset.dealId) < deal.id);
      ticker.insertBefore(tickerItem(deal), older || null);
    }
    while (ticker.children.length > TICKER_LENGTH) {
      tickerDeals.delete(ticker.lastElementChild.dataset.dealId);
      ticker.lastElementChild.remove();
    }
    fitTicker();
  }

  /** Show only whole rows: a half-cut line reads as a glitch from across the room. */
  function fitTicker() {
    for (const item of ticker.children) item.hidden = false;
    for (const item of ticker.children) {
      item.hidden = item.offsetTop + item.offsetHeight > ticker.clientHeight;
    }
  }

  /** Fill the ticker with the latest intents: on load, and after a connection was lost. */
  function readRecentDeals() {
    return fetch("/api/v1/fairs/" + fairId + "/deals?per_page=" + TICKER_LENGTH, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    })
      .then((response) => (response.ok ? response.json() : { items: [] }))
      .then((page) => addDeals(page.items.filter((deal) => deal.status === "active")))
      .catch(() => undefined);
  }

  // ---- charts --------------------------------------------------------------------------

  const palette = ["#f5c26b", "#e4572e", "#45c48a", "#4fa3e0", "#b58cf0", "#f08fb0", "#7dd3c8",
    "#c9d36a"];
  const axisText = { color: "#c7cfe4", fontSize: vw(1.1) };
  const charts = {
    provinces: echarts.init(document.getElementById("chart-provinces")),
    categories: echarts.init(document.getElementById("chart-categories")),
    halls: echarts.init(document.getElementById("chart-halls")),
  };

  function vw(size) {
    return Math.round((window.innerWidth * size) / 100);
  }

  // Bars need numbers for their length; every label shown is the exact string.
  function wanNumber(yuan) {
    return Number(formatWan(yuan));
  }

  function byAmount(breakdown) {
    return Object.entries(breakdown).sort((a, b) => {
      const left = fenDigits(a[1].amount);
      const right = fenDigits(b[1].amount);
      if (left.length !== right.length) return right.length - left.length;
      return right < left ? -1 : right > left ? 1 : 0;
    });
  }

  function barOption(names, entries, horizontal) {
    const valueAxis = { type: "value", show: false };
    const categoryAxis = {
      type: "category", data: names, inverse: horizontal,
      axisLine: { lineStyle: { color: "rgba(152,164,196,.35)" } },
      axisTick: { show: false },
      axisLabel: horizontal
        ? { ...axisText }
        : { ...axisText, fontSize: vw(1.05), interval: 0, overflow: "break",
          width: names.length ? vw(22) / names.length : 0 },
    };
    return {
      animationDurationUpdate: 500,
      grid: horizontal
        ? { left: vw(7), right: vw(5), top: 4, bottom: 4 }
        : { left: 8, right: 8, top: vw(2), bottom: vw(3.2) },
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: [{
        type: "bar",
        barMaxWidth: vw(horizontal ? 1.3 : 3),
        data: entries.map((entry) => ({ value: wanNumber(entry.amount), label: entry.amount })),
        itemStyle: {
          borderRadius: horizontal ? [0, 4, 4, 0] : [4, 4, 0, 0],
          color: new echarts.graphic.LinearGradient(0, 0, horizontal ? 1 : 0, horizontal ? 0 : 1, [
            { offset: 0, color: horizontal ? "#b3261e" : "#ffd98a" },
            { offset: 1, color: horizontal ? "#f5c26b" : "#e4572e" },
          ]),
        },
        label: {
          show: true, position: horizontal ? "right" : "top", color: "#f4ecd8",
          fontSize: vw(1.15), fontFamily: "DIN Alternate, Bahnschrift, Arial",
          formatter: (params) => formatWan(params.data.label),
        },
      }],
    };
  }

  function drawCharts() {
    if (!lastTotals) return;
    const provinces = byAmount(lastTotals.by_buyer_province).slice(0, TOP_PROVINCES);
    charts.provinces.setOption(barOption(
      provinces.map(([code]) => config.provinces[code] || code),
      provinces.map(([, entry]) => entry), true));

    const categories = byAmount(lastTotals.by_category);
    charts.categories.setOption({
      animationDurationUpdate: 500,
      color: palette,
      legend: { show: false },
      series: [{
        type: "pie",
        radius: ["34%", "58%"],
        center: ["50%", "52%"],
        minAngle: 4,
        itemStyle: { borderColor: "#0d1530", borderWidth: 2 },
        label: {
          color: "#f4ecd8", fontSize: vw(1.05), overflow: "break", width: vw(8),
          formatter: (params) => params.name + "\n" + formatWan(params.data.amount),
        },
        labelLine: {
          length: vw(0.5), length2: vw(0.6), lineStyle: { color: "rgba(244,236,216,.45)" },
        },
        data: categories.map(([slug, entry]) => ({
          name: config.categories[slug] || slug,
          value: wanNumber(entry.amount),
          amount: entry.amount,
        })),
      }],
    });

    const hallNames = halls.map((hall) => hall.name);
    const hallEntries = halls.map((hall) =>
      lastTotals.by_hall[String(hall.id)] || { amount: "0.00", deal_count: 0 });
    charts.halls.setOption(barOption(hallNames, hallEntries, false));
  }

  window.addEventListener("resize", () => {
    for (const chart of Object.values(charts)) chart.resize();
    fitTicker();
  });

  // ---- audience: viewers of the fair's halls ------------------------------------------

  const hallViewers = new Map();

  /** A `viewers` message: one hall's figures, and the whole fair's as of that moment. */
  function applyViewers(figures) {
    hallViewers.set(figures.hall_id, figures.viewers);
    document.getElementById("audience-viewers").textContent = String(figures.fair.viewers);
    document.getElementById("audience-visits").textContent = figures.fair.visits.toLocaleString();
    document.getElementById("audience-peak").textContent = String(figures.fair.peak_viewers);
    document.getElementById("audience-halls").textContent = halls
      .map((hall) => hall.name + " " + (hallViewers.get(hall.id) || 0))
      .join(" · ");
  }

  // ---- connection ----------------------------------------------------------------------

  const statusText = document.getElementById("dash-status-text");

  function setState(state, message) {
    document.body.dataset.state = state;
    statusText.textContent = message || text[state];
  }

  const socket = io("/live", { transports: ["websocket", "polling"] });

  function joinDashboard() {
    socket.timeout(5000).emit("join_dashboard", { fair_id: fairId }, (timedOut, ack) => {
      if (timedOut) return; // the connection is gone again; the next connect retries
      if (!ack.ok) {
        setState("refused", text.refused);
        socket.disconnect();
        return;
      }
      halls = ack.halls;
      renameHalls();
      (ack.viewers || []).forEach(applyViewers);
      applyTotals(ack.totals);
      drawCharts();
      setState("live");
    });
  }

  socket.on("connect", () => {
    joinDashboard();
    // Rooms do not survive a reconnect, and what was sent meanwhile was missed.
    if (everConnected) {
      readTotals();
      readRecentDeals();
    }
    everConnected = true;
  });
  socket.on("disconnect", () => setState(navigator.onLine ? "reconnecting" : "offline"));
  socket.on("connect_error", () => {
    if (socket.active) setState(navigator.onLine ? "reconnecting" : "offline");
    else setState("refused", text.refused);
  });
  socket.on("totals", applyTotals);
  socket.on("viewers", applyViewers);
  socket.on("deals", (message) => {
    if (message.fair_id === fairId) addDeals(message.deals);
  });

  // A projector's network may drop silently: do not wait for the ping timeout to notice.
  window.addEventListener("offline", () => setState("offline"));
  window.addEventListener("online", () => {
    socket.disconnect();
    socket.connect();
  });

  // ---- clock ---------------------------------------------------------------------------

  const clock = document.getElementById("dash-clock");
  function tick() {
    clock.textContent = clockFormat.format(new Date());
  }
  tick();
  window.setInterval(tick, 1000);

  readTotals();
  readRecentDeals();
})();
