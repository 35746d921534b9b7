// Hall viewers for bench/halls.py: N socket.io clients in one hall, timing every intent.
//
//   node bench/viewers.js --urls http://127.0.0.1:8001,http://127.0.0.1:8002 --hall 1 \
//        --viewers 1000 [--concurrency 200]
//
// Each viewer connects (websocket, its own connection) to one of the servers in turn, joins
// the hall and records, for every intent in a `deals` message, the time from the intent's
// `created_at` (set by the server when it recorded the intent) to its arrival here. Node's
// socket.io-client comes from node_modules, so one process can hold thousands of viewers.
//
// Protocol on stdout/stdin, one JSON object a line:
//   -> {"event": "joined", "seconds": ..., "joined": n, "failed": n}
//   <- {"cmd": "report", "deals": [ids...], "final_seq": s, "wait_seconds": w}
//   -> {"event": "report", ...figures}
"use strict";

const readline = require("node:readline");
const { io } = require("socket.io-client");

function option(name, fallback) {
  const index = process.argv.indexOf("--" + name);
  return index > 0 ? process.argv[index + 1] : fallback;
}

const urls = option("urls", "http://127.0.0.1:5000").split(",");
const hallId = Number(option("hall", "1"));
const count = Number(option("viewers", "100"));
const concurrency = Number(option("concurrency", "200"));

function say(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

class Viewer {
  constructor(url) {
    this.url = url;
    this.seen = new Set();
    this.messages = 0;
    this.lastSeq = -1;
    this.joined = false;
    this.reconnects = 0;
  }

  connect(latencies) {
    return new Promise((resolve) => {
      const socket = io(this.url + "/live", {
        transports: ["websocket"],
        forceNew: true, // one connection per viewer, as separate browsers would have
        reconnectionDelayMax: 2000,
        timeout: 60000,
      });
      this.socket = socket;
      let settled = false;
      const join = () => {
        socket.timeout(60000).emit("join_hall", { hall_id: hallId }, (timedOut, ack) => {
          if (!timedOut && ack && ack.ok) {
            this.joined = true;
            if (ack.totals.seq > this.lastSeq) this.lastSeq = ack.totals.seq;
          }
          if (!settled) {
            settled = true;
            resolve(this.joined);
          }
        });
      };
      socket.on("connect", () => {
        if (this.joined) this.reconnects += 1;
        join();
      });
      socket.on("connect_error", () => {
        if (!settled && !socket.active) {
          settled = true;
          resolve(false);
        }
      });
      socket.onAny(() => {
        this.messages += 1;
      });
      socket.on("deals", (message) => {
        const now = Date.now();
        for (const deal of message.deals) {
          if (this.seen.has(deal.id)) continue;
          this.seen.add(deal.id);
          latencies.push(now - Date.parse(deal.created_at));
        }
      });
      socket.on("totals", (totals) => {
        if (totals.seq > this.lastSeq) this.lastSeq = totals.seq;
      });
    });
  }
}

function percentile(sorted, fraction) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

async function main() {
  const latencies = [];
  const viewers = [];
  for (let i = 0; i < count; i += 1) viewers.push(new Viewer(urls[i % urls.length]));
  const started = Date.now();
  let next = 0;
  let failed = 0;
  async function worker() {
    while (next < viewers.length) {
      const viewer = viewers[next];
      next += 1;
      if (!(await viewer.connect(latencies))) failed += 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  say({ event: "joined", seconds: (Date.now() - started) / 1000, joined: count - failed, failed });
  const measuredFrom = Date.now();
  // Messages before the intents start (join snapshots' viewers updates) are not counted.
  const messagesAtStart = viewers.map((viewer) => viewer.messages);

  const input = readline.createInterface({ input: process.stdin });
  for await (const line of input) {
    const command = JSON.parse(line);
    if (command.cmd !== "report") continue;
    // Give late messages (and viewers catching up after an outage) up to wait_seconds.
    const deadline = Date.now() + 1000 * (command.wait_seconds || 0);
    const expected = new Set(command.deals);
    const complete = () => viewers.every((viewer) =>
      viewer.lastSeq >= command.final_seq && [...expected].every((id) => viewer.seen.has(id)));
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
      deals: expected.size,
      delivery_ratio: expected.size && count ? delivered / (expected.size * count) : null,
      p50_ms: percentile(latencies, 0.5),
      p99_ms: percentile(latencies, 0.99),
      max_ms: latencies.length ? latencies[latencies.length - 1] : null,
      messages_per_viewer: messages.reduce((a, b) => a + b, 0) / count,
      max_messages_per_viewer: Math.max(...messages),
      seconds,
      on_latest_totals: viewers.filter((viewer) => viewer.lastSeq >= command.final_seq).length,
      reconnects: viewers.reduce((sum, viewer) => sum + viewer.reconnects, 0),
    });
    for (const viewer of viewers) viewer.socket.disconnect();
    process.exit(0);
  }
}

main();
