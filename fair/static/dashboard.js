/* The organiser's big screen (数据大屏): totals, deposits paid, the intents ticker and the
 * charts, kept live over the /live socket (fair/static/js/live.js).
 *
 * It must keep up on modest hardware whatever arrives: a message only changes `view` and asks
 * for an animation frame; the frame draws what changed, once. Charts are drawn without
 * animation (an animation queued per message falls behind and leaves bars out of line with
 * their labels) and at most every CHART_INTERVAL ms. Nothing here grows with the intents
 * signed so far: the ticker keeps 30 rows, the charts a fair's provinces, categories and halls.
 */
import { frameScheduler } from "/static/js/frame.js";
import { openLive } from "/static/js/live.js";
import { fenOf, grouped, wan, wanNumber } from "/static/js/money.js";
import { Ticker } from "/static/js/ticker.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const fairId = config.fair_id;
const text = config.strings;
const TICKER_ROWS = 30;
const CHART_INTERVAL = 1000;
/**
 * The screen is read across a room: five frames a second are live enough, and each frame's
 * style, layout, paint and raster cost the same whatever changed (with four screens beside the
 * server on two cores, eight a second left frames waiting for the CPU).
 */
const FRAME_INTERVAL = 200;

const view = {
  state: "connecting",
  totals: null,
  figuresDue: false,
  chartsDue: false,
  chartsDrawnAt: 0,
  chartsTimer: null,
  /** What is left to draw of the charts' latest snapshot, a chart a frame. */
  chartSteps: [],
  halls: [],
  fairFigures: null,
  hallViewers: new Map(),
  audienceDue: false,
  sizeDue: true,
  paused: false,
};
const requestDraw = frameScheduler(draw, { interval: FRAME_INTERVAL });

// ---- figures -----------------------------------------------------------------------------

const figures = {
  amount: document.getElementById("kpi-amount"),
  secured: document.getElementById("kpi-secured"),
  securedCount: document.getElementById("kpi-secured-count"),
  projects: document.getElementById("kpi-projects"),
  deals: document.getElementById("kpi-deals"),
  buyers: document.getElementById("kpi-buyers"),
};

function count(value) {
  return String(value).replace(/\B(?=(\d{3})+$)/g, ",");
}

/** Show a figure; its length sets its font size (dashboard.css), so it stays on one line. */
function setFigure(element, value) {
  if (element.textContent === value) return;
  element.textContent = value;
  element.style.setProperty("--chars", String(value.length));
}

function drawFigures() {
  const totals = view.totals;
  setFigure(figures.amount, wan(totals.amount));
  setFigure(figures.secured, wan(totals.secured_amount ?? "0.00"));
  figures.securedCount.textContent = count(totals.secured_count ?? 0);
  setFigure(figures.projects, count(totals.project_count));
  setFigure(figures.deals, count(totals.deal_count));
  setFigure(figures.buyers, count(totals.buyer_count));
  liveState.dataset.seq = String(totals.seq);
}

// ---- the ticker --------------------------------------------------------------------------

const clockFormat = new Intl.DateTimeFormat(config.locale === "en" ? "en-GB" : "zh-CN", {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  timeZone: config.timezone,
});

function span(className, value) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = value; // text, never HTML: titles are user input
  return element;
}

function securedBadge(item) {
  item.classList.add("is-secured");
  item.append(span("mark", text.secured));
}

function tickerRow(deal) {
  const item = document.createElement("li");
  item.dataset.dealId = String(deal.id);
  const time = document.createElement("time");
  time.dateTime = deal.created_at;
  time.textContent = clockFormat.format(new Date(deal.created_at));
  const hall = deal.hall_id === null ? null : view.halls.find((each) => each.id === deal.hall_id);
  const meta = [config.provinces[deal.buyer_province] || deal.buyer_province, hall && hall.name]
    .filter(Boolean).join(" · ");
  item.append(time, span("title", deal.project.title), span("meta", meta),
    span("amount", "¥" + grouped(deal.amount)));
  if (deal.secured) securedBadge(item);
  return item;
}

const ticker = new Ticker(document.getElementById("ticker"), {
  capacity: TICKER_ROWS, row: tickerRow, markSecured: securedBadge,
});

// ---- charts ------------------------------------------------------------------------------

const charts = {
  provinces: echarts.init(document.getElementById("chart-provinces")),
  categories: echarts.init(document.getElementById("chart-categories")),
  halls: echarts.init(document.getElementById("chart-halls")),
};
const palette = ["#f5c26b", "#e4572e", "#45c48a", "#4fa3e0", "#b58cf0", "#f08fb0", "#7dd3c8",
  "#c9d36a"];
const GOLD = new echarts.graphic.LinearGradient(0, 0, 1, 0, [
  { offset: 0, color: "#b3261e" }, { offset: 1, color: "#f5c26b" },
]);
const NUMERALS = "DIN Alternate, Bahnschrift, Roboto Condensed, Arial Narrow, Arial, sans-serif";
const LETTERS = getComputedStyle(document.body).fontFamily;
const ruler = document.getElementById("dash-ruler");
let unit = window.innerWidth / 100; // dashboard.css's --u in pixels, measured on resize
const measure = document.createElement("canvas").getContext("2d");

function textWidth(value, size, family) {
  measure.font = size + "px " + family;
  return measure.measureText(value).width;
}

function byAmount(breakdown) {
  return Object.entries(breakdown).sort((left, right) => {
    const difference = fenOf(right[1].amount) - fenOf(left[1].amount);
    return difference > 0n ? 1 : difference < 0n ? -1 : 0;
  });
}

/**
 * Horizontal bars on a category axis: every label sits on its bar's band, names cut with an
 * ellipsis at a width fixed for the chart, values at the bars' ends inside the chart.
 */
function drawBars(chart, names, entries, colours = null) {
  // A chart whose figures did not change since it was drawn is left as it is (the halls' chart
  // while intents are signed outside the halls, any chart when only the ticker moved).
  const width = chart.getWidth();
  const height = chart.getHeight();
  const drawn = JSON.stringify([width, height, unit, names, entries]);
  if (drawnCharts.get(chart) === drawn) return;
  drawnCharts.set(chart, drawn);
  describeChart(chart, names, entries);
  const fontSize = Math.max(11, Math.round(unit * 1.1));
  const values = entries.map((entry) => wan(entry.amount));
  // ECharts cuts a label that is exactly as wide as its room: leave it a character more.
  const nameWidth = Math.min(width * 0.34, fontSize
    + Math.max(fontSize * 2, ...names.map((name) => textWidth(name, fontSize, LETTERS))));
  const valueWidth = Math.min(width * 0.34,
    Math.max(fontSize * 2, ...values.map((value) => textWidth(value, fontSize, NUMERALS))));
  const band = height / Math.max(1, names.length);
  chart.setOption({
    animation: false,
    // ECharts' own description is replaced by ours, written from the same figures.
    aria: { enabled: true, label: { enabled: true, description: chartText(chart, names, entries) } },
    grid: { left: nameWidth + fontSize * 0.6, right: valueWidth + fontSize * 0.8, top: 2,
      bottom: 2 },
    xAxis: { type: "value", show: false, min: 0 },
    yAxis: {
      type: "category", data: names, inverse: true,
      axisLine: { lineStyle: { color: "rgba(152,164,196,.35)" } },
      axisTick: { show: false },
      axisLabel: { color: "#c7cfe4", fontSize, fontFamily: LETTERS, width: nameWidth,
        overflow: "truncate", ellipsis: "…", margin: fontSize * 0.5, interval: 0 },
    },
    series: [{
      type: "bar",
      barMaxWidth: Math.max(6, Math.min(band * 0.62, unit * 1.6)),
      data: entries.map((entry, index) => ({
        value: wanNumber(entry.amount), shown: values[index],
        itemStyle: colours ? { color: colours[index % colours.length] } : undefined,
      })),
      itemStyle: { borderRadius: [0, 4, 4, 0], color: GOLD },
      label: { show: true, position: "right", color: "#f4ecd8", fontSize, fontFamily: NUMERALS,
        formatter: (params) => params.data.shown },
    }],
  }, { lazyUpdate: false, silent: true });
}

/** What each chart shows now, as drawBars was given it. */
const drawnCharts = new Map();
const chartKeys = new Map(Object.entries(charts).map(([key, chart]) => [chart, key]));

/** A chart's figures in words: ECharts puts them in the chart's aria-label. */
function chartText(chart, names, entries) {
  const title = document.getElementById("title-" + chartKeys.get(chart)).textContent;
  if (entries.length === 0) return text.chart_empty.replace("__TITLE__", title);
  const items = entries.map((entry, index) => text.chart_item.replace("__NAME__", names[index])
    .replace("__AMOUNT__", wan(entry.amount)).replace("__COUNT__", count(entry.deal_count ?? 0)));
  return text.chart.replace("__TITLE__", title).replace("__ITEMS__", items.join(text.separator));
}

/** The table beside a chart, with the same rows. */
function describeChart(chart, names, entries) {
  const body = document.querySelector("#table-" + chartKeys.get(chart) + " tbody");
  body.replaceChildren(...entries.map((entry, index) => {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = names[index];
    const amount = document.createElement("td");
    amount.textContent = wan(entry.amount);
    const deals = document.createElement("td");
    deals.textContent = count(entry.deal_count ?? 0);
    row.append(name, amount, deals);
    return row;
  }));
}

/**
 * The charts of one totals snapshot, one chart a frame: three charts laid out in one task kept
 * the main thread busy for longer than a frame on a slow machine with several screens open.
 */
function drawCharts() {
  const totals = view.totals;
  // As many provinces as there are lines for at a readable size, biggest first.
  const lines = Math.floor(charts.provinces.getHeight() / Math.max(22, unit * 2.3));
  const provinces = byAmount(totals.by_buyer_province).slice(0, Math.max(5, lines));
  const categories = byAmount(totals.by_category);
  view.chartSteps = [
    () => drawBars(charts.provinces, provinces.map(([code]) => config.provinces[code] || code),
      provinces.map(([, entry]) => entry)),
    () => drawBars(charts.categories, categories.map(([slug]) => config.categories[slug] || slug),
      categories.map(([, entry]) => entry), palette),
    () => drawBars(charts.halls, view.halls.map((hall) => hall.name), view.halls.map((hall) =>
      totals.by_hall[String(hall.id)] || { amount: "0.00", deal_count: 0 })),
  ];
  view.chartsDrawnAt = performance.now();
  drawNextChart();
}

function drawNextChart() {
  view.chartSteps.shift()();
  if (view.chartSteps.length > 0) requestDraw();
}

/** Charts follow the totals at most every CHART_INTERVAL ms; the figures every frame. */
function drawChartsWhenDue() {
  const wait = view.chartsDrawnAt + CHART_INTERVAL - performance.now();
  if (wait <= 0) {
    view.chartsDue = false;
    drawCharts();
  } else if (view.chartsTimer === null) {
    view.chartsTimer = window.setTimeout(() => {
      view.chartsTimer = null;
      requestDraw();
    }, wait);
  }
}

// ---- size ---------------------------------------------------------------------------------

/** The one place that reads layout: the screen's unit and the room the units take. */
function measureSize() {
  unit = ruler.offsetWidth / 100;
  const sample = ruler.querySelector(".kpi-value");
  const fontSize = parseFloat(getComputedStyle(sample).fontSize);
  document.documentElement.style.setProperty("--digit",
    String(sample.offsetWidth / sample.textContent.length / fontSize));
  for (const kpi of document.querySelectorAll(".kpi")) {
    kpi.style.setProperty("--unit-room", kpi.querySelector(".kpi-unit").offsetWidth + "px");
  }
  for (const chart of Object.values(charts)) chart.resize();
}

const resized = new ResizeObserver(() => {
  view.sizeDue = true;
  view.chartsDue = view.totals !== null;
  requestDraw();
});
resized.observe(document.body);
for (const chart of Object.values(charts)) resized.observe(chart.getDom());

// ---- audience: viewers of the fair's halls -----------------------------------------------

const audience = {
  viewers: document.getElementById("audience-viewers"),
  visits: document.getElementById("audience-visits"),
  peak: document.getElementById("audience-peak"),
  halls: document.getElementById("audience-halls"),
};

/** A `viewers` message: one hall's figures, and the whole fair's as of that moment. */
function takeViewers(message) {
  view.hallViewers.set(message.hall_id, message.viewers);
  view.fairFigures = message.fair;
  view.audienceDue = true;
  requestDraw();
}

/**
 * 累计人次: the recorded visits of the totals (the catalogue opened, halls joined), which move
 * with every totals message; the halls' live count of joins moves in between, and the larger
 * of the two is the newer figure.
 */
function visits() {
  const recorded = view.totals ? view.totals.visits : 0;
  const live = view.fairFigures ? view.fairFigures.visits : 0;
  return Math.max(recorded, live);
}

function drawAudience() {
  if (view.fairFigures) {
    audience.viewers.textContent = count(view.fairFigures.viewers);
    audience.peak.textContent = count(view.fairFigures.peak_viewers);
  }
  if (view.fairFigures || view.totals) audience.visits.textContent = count(visits());
  audience.halls.textContent = view.halls
    .map((hall) => hall.name + " " + (view.hallViewers.get(hall.id) || 0)).join(" · ");
}

// ---- state and drawing --------------------------------------------------------------------

const liveState = document.querySelector('[data-testid="live-state"]');
const statusText = document.getElementById("dash-status-text");

function drawState() {
  liveState.dataset.state = view.state;
  document.body.dataset.state = view.state;
  statusText.textContent = text[view.state];
}

// The totals in words for screen readers, at most every ANNOUNCE_EVERY_MS (not every update).
const ANNOUNCE_EVERY_MS = 30_000;
const announcer = document.getElementById("totals-announce");
let announcedAt = 0;
let announceTimer = null;

function announceTotals() {
  if (announceTimer !== null) return;
  const wait = announcedAt === 0 ? 0 : Math.max(0, announcedAt + ANNOUNCE_EVERY_MS - Date.now());
  announceTimer = window.setTimeout(() => {
    announceTimer = null;
    if (view.paused || !view.totals) return;
    announcedAt = Date.now();
    announcer.textContent = text.announce.replace("__AMOUNT__", wan(view.totals.amount))
      .replace("__COUNT__", count(view.totals.deal_count));
  }, wait);
}

// WCAG 2.2.2: what moves by itself can be stopped; messages keep arriving and show on resume.
const pauseButton = document.getElementById("pause-live");
pauseButton.addEventListener("click", () => {
  view.paused = !view.paused;
  pauseButton.setAttribute("aria-pressed", String(view.paused));
  pauseButton.textContent = view.paused ? text.resume : text.pause;
  document.body.dataset.paused = String(view.paused);
  if (!view.paused) requestDraw();
});

function draw() {
  if (view.paused) return;
  if (view.sizeDue) {
    view.sizeDue = false;
    measureSize();
  }
  if (document.body.dataset.state !== view.state) drawState();
  if (view.figuresDue) {
    view.figuresDue = false;
    drawFigures();
    announceTotals();
  }
  if (view.chartSteps.length > 0) drawNextChart();
  else if (view.chartsDue) drawChartsWhenDue();
  ticker.draw();
  if (view.audienceDue) {
    view.audienceDue = false;
    drawAudience();
  }
}

openLive({
  fairId,
  join: ["join_dashboard", { fair_id: fairId }],
  onJoined(ack) {
    view.halls = ack.halls;
    (ack.viewers || []).forEach((figures) => {
      view.hallViewers.set(figures.hall_id, figures.viewers);
      view.fairFigures = figures.fair;
    });
    view.audienceDue = true;
    view.chartsDue = view.totals !== null;
    requestDraw();
  },
  onTotals(totals) {
    view.totals = totals;
    view.figuresDue = true;
    view.audienceDue = true;
    view.chartsDue = true;
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
  events: { viewers: takeViewers },
});

// ---- clock ---------------------------------------------------------------------------------

const clock = document.getElementById("dash-clock");
function tick() {
  clock.textContent = clockFormat.format(new Date());
}
tick();
window.setInterval(tick, 1000);
