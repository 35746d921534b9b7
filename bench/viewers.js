// Hall viewers for bench/halls.py: N Socket.IO connections in one hall, timing every intent.
//
//   node bench/viewers.js --urls http://127.0.0.1:8001,http://127.0.0.1:8002 --hall 1 \
//        --viewers 1000 [--concurrency 200]
//
// Each viewer opens its own websocket to one of the servers in turn and speaks the Socket.IO
// protocol (Engine.IO 4) as socket.io-client does: it joins /live, sends join_hall with an ack,
// answers pings, and records for every intent in a `deals` message the time from the intent's
// `created_at` (set by the server that recorded it) to its arrival here. It is written on the
// `ws` package (from node_modules, under socket.io-client) rather than on socket.io-client
// itself because every viewer receives the same frames: parsing each distinct frame once keeps
// one Node process able to hold thousands of viewers without becoming the bottleneck.
//
// Protocol on stdout/stdin, one JSON object a line:
//   -> {"event": "joined", "seconds": ..., "joined": n, "failed": n}
//   <- {"cmd": "report", "deals": [ids...], "final_seq": s, "wait_seconds": w}
//   -> {"event": "report", ...figures}
"use strict";

const readline = require("node:readline");
const WebSocket = require("ws");

function option(name, fallback) {
  const index = process.argv.indexOf("--" + name);
  return index > 0 ? process.argv[index + 1] : fallback;
}

const urls = option("urls", "http://127.0.0.1:5000").split(",");
const hallId = Number(option("hall", "1"));
const count = Number(option("viewers", "100"));
const concurrency = Number(option("concurrency", "200"));
const NAMESPACE = "/live,";

function say(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

// Every viewer gets byte-identical frames: parse each once.
const parsed = new Map();
function parse(text, offset) {
  let value = parsed.get(text);
  if (value === undefined) {
    value = JSON.parse(text.slice(offset));
    parsed.set(text, value);
    if (parsed.size > 2000) parsed.delete(parsed.keys().next().value);
  }
  return value;
}

const latencies = [];

class Viewer {
  constructor(url, number) {
    this.url = url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
    // Each viewer is an anonymous visitor of its own (its first-party cookie): the server
    // counts one viewer per visitor, not per socket.
    this.cookie = `fair_visitor=${number.toString(16).padStart(32, "0")}`;
    this.seen = new Set();
    this.messages = 0;
    this.lastSeq = -1;
    this.joined = false;
    this.reconnects = 0;
    this.closed = false;
  }

  connect() {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok) => {
        if (!settled) {
          settled = true;
          resolve(ok);
        }
      };
      const socket = new WebSocket(this.url, {
        perMessageDeflate: false, headers: { Cookie: this.cookie },
      });
      this.socket = socket;
      socket.on("message", (data) => {
        const text = data.toString();
        if (text === "2") {
          socket.send("3"); // Engine.IO ping -> pong
        } else if (text[0] === "0") {
          socket.send("40" + NAMESPACE); // open -> connect to /live, anonymously
        } else if (text.startsWith("40" + NAMESPACE)) {
          socket.send("42" + NAMESPACE + "1" + JSON.stringify(["join_hall", { hall_id: hallId }]));
        } else if (text.startsWith("43" + NAMESPACE + "1")) {
          const [ack] = JSON.parse(text.slice(3 + NAMESPACE.length));
          if (ack.ok) {
            this.joined = true;
            if (ack.totals.seq > this.lastSeq) this.lastSeq = ack.totals.seq;
          }
          settle(ack.ok);
        } else if (text.startsWith("42" + NAMESPACE)) {
          this.messages += 1;
          const [name, payload] = parse(text, 2 + NAMESPACE.length);
          if (name === "deals") {
            const now = Date.now();
            for (const deal of payload.deals) {
              if (this.seen.has(deal.id)) continue;
              this.seen.add(deal.id);
              latencies.push(now - Date.parse(deal.created_at));
            }
          } else if (name === "totals" && payload.seq > this.lastSeq) {
            this.lastSeq = payload.seq;
          }
        } else if (text.startsWith("44" + NAMESPACE)) {
          settle(false); // connection refused
        }
      });
      socket.on("error", () => settle(false));
      socket.on("close", () => {
        settle(false);
        if (this.closed) return;
        // As socket.io-client would: come back and join again.
        this.reconnects += 1;
        setTimeout(() => this.connect(), 1000);
      });
    });
  }

  close() {
    this.closed = true;
    this.socket.close();
  }
}

function percentile(sorted, fraction) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

async function main() {
  const viewers = [];
  for (let i = 0; i < count; i += 1) viewers.push(new Viewer(urls[i % urls.length], i + 1));
  const started = Date.now();
  let next = 0;
  let failed = 0;
  async function worker() {
    while (next < viewers.length) {
      const viewer = viewers[next];
      next += 1;
      if (!(await viewer.connect())) failed += 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  say({ event: "joined", seconds: (Date.now() - started) / 1000, joined: count - failed, failed });
  const measuredFrom = Date.now();
  // Only what arrives once every viewer is in counts towards the messages per viewer.
  const messagesAtStart = viewers.map((viewer) => viewer.messages);

  const input = readline.createInterface({ input: process.stdin });
  for await (const line of input) {
    const command = JSON.parse(line);
    if (command.cmd !== "report") continue;
    // Give late messages (and viewers catching up after an outage) up to wait_seconds.
    const deadline = Date.now() + 1000 * (command.wait_seconds || 0);
    const expected = command.deals;
    const complete = () => viewers.every((viewer) =>
      viewer.lastSeq >= command.final_seq && expected.every((id) => viewer.seen.has(id)));
    while (Date.now() < deadline && !complete()) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const seconds = (Date.now() - measuredFrom) / 1000;
    let delivered = 0;
    for (const viewer of viewers) {
      for (const id of expected) if (viewer.seen.has(id)) delivered += 1;
    }
    latencies.sort((a, b) => a - b);
    const messages = viewers.map((viewer, i) => viewer.messages - messagesAtStart[i]);
    say({
      event: "report",
      viewers: count,
      joined: viewers.filter((viewer) => viewer.joined).length,
      deals: expected.length,
      delivery_ratio: expected.length && count ? delivered / (expected.length * count) : null,
      p50_ms: percentile(latencies, 0.5),
      p99_ms: percentile(latencies, 0.99),
      max_ms: latencies.length ? latencies[latencies.length - 1] : null,
      messages_per_viewer: messages.reduce((a, b) => a + b, 0) / count,
      max_messages_per_viewer: Math.max(...messages),
      seconds,
      on_latest_totals: viewers.filter((viewer) => viewer.lastSeq >= command.final_seq).length,
      reconnects: viewers.reduce((sum, viewer) => sum + viewer.reconnects, 0),
    });
    for (const viewer of viewers) viewer.close();
    process.exit(0);
  }
}

main();
