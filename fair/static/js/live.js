/* A page's /live socket for one fair's news: join, totals by seq, staleness, reconnects.
 *
 * `totals` messages are whole snapshots with a `seq`; several server processes may deliver them
 * out of order, so only a higher seq than the one applied is taken. The server's `seq`
 * heartbeat (every 2 s) says the newest committed seq: a page still behind it after
 * `staleAfter` ms has missed something (a message lost, or news that never came), says so
 * ("stale") and reads GET /api/v1/fairs/{id}/totals, again every `staleAfter` ms until it has
 * caught up. After a reconnect the join acknowledgement is a fresh snapshot (totals and the
 * last intents) and the page reads the totals too. Needs socket.io-client's `io` global.
 *
 * States: connecting, live, stale, reconnecting, offline, refused.
 */
import { callApi } from "/static/js/api.js";

const JOIN_TIMEOUT = 5000;

/**
 * @param {object} options
 * @param {number} options.fairId
 * @param {[string, object]} options.join the event that joins the room, and its payload
 * @param {(ack: object) => void} options.onJoined the page's own part of the acknowledgement
 * @param {(totals: object) => void} options.onTotals a newer snapshot than any before
 * @param {(deals: object[]) => void} options.onDeals intents for the ticker, in any order
 * @param {(dealIds: number[]) => void} options.onSecured intents whose deposit was paid
 * @param {(state: string) => void} options.onState
 * @param {Object<string, Function>} [options.events] the page's other server events
 * @param {number} [options.staleAfter]
 */
export function openLive({
  fairId, join, onJoined, onTotals, onDeals, onSecured, onState, events = {}, staleAfter = 2000,
}) {
  const socket = io("/live", { transports: ["websocket", "polling"] });
  let seq = -1; // the newest totals taken
  let heard = -1; // the newest seq the server's heartbeat named
  let state = "connecting";
  let joined = false;
  let everJoined = false;
  let staleTimer = null;
  let reading = false;

  function setState(next) {
    if (next === state) return;
    state = next;
    onState(next);
  }

  function takeTotals(totals) {
    if (!totals || totals.fair_id !== fairId || totals.seq <= seq) return;
    seq = totals.seq;
    onTotals(totals);
    watchSeq();
  }

  /** Live once the page has what the heartbeat named; stale if it has not within staleAfter. */
  function watchSeq() {
    if (seq >= heard) {
      clearTimeout(staleTimer);
      staleTimer = null;
      if (state === "stale") setState("live");
      return;
    }
    if (staleTimer !== null) return;
    staleTimer = setTimeout(() => {
      staleTimer = null;
      if (!joined || seq >= heard) return;
      setState("stale");
      readTotals();
    }, staleAfter);
  }

  async function readTotals() {
    if (reading) return;
    reading = true;
    try {
      const answer = await callApi("GET", "/api/v1/fairs/" + fairId + "/totals");
      if (answer.ok) takeTotals(answer.data);
    } catch {
      // No answer: the timer below, the next heartbeat or the reconnect tries again.
    } finally {
      reading = false;
      if (joined) watchSeq();
    }
  }

  function joinRoom() {
    const [event, payload] = join;
    socket.timeout(JOIN_TIMEOUT).emit(event, payload, (timedOut, ack) => {
      if (timedOut) {
        if (socket.connected) joinRoom(); // a busy server, not a lost connection: ask again
        return;
      }
      if (!ack.ok) {
        joined = false;
        setState("refused");
        socket.disconnect();
        return;
      }
      joined = true;
      takeTotals(ack.totals);
      if (ack.deals) onDeals(ack.deals);
      onJoined(ack);
      setState(seq < heard ? "stale" : "live");
      watchSeq();
      // What was sent while the connection was down is lost: read the totals as well.
      if (everJoined) readTotals();
      everJoined = true;
    });
  }

  function lost() {
    joined = false;
    if (state !== "refused") setState(navigator.onLine ? "reconnecting" : "offline");
  }

  socket.on("connect", joinRoom);
  socket.on("disconnect", lost);
  socket.on("connect_error", () => {
    if (socket.active) lost();
    else setState("refused");
  });
  socket.on("totals", takeTotals);
  socket.on("deals", (message) => {
    if (message.fair_id === fairId) onDeals(message.deals);
  });
  socket.on("secured", (message) => {
    if (message.fair_id === fairId) onSecured(message.deal_ids);
  });
  socket.on("seq", (message) => {
    if (message.fair_id !== fairId || message.seq <= heard) return;
    heard = message.seq;
    watchSeq();
  });
  for (const [name, handler] of Object.entries(events)) socket.on(name, handler);

  // A projector's network may drop silently: do not wait for the ping timeout to notice.
  window.addEventListener("offline", () => setState("offline"));
  window.addEventListener("online", () => {
    socket.disconnect();
    socket.connect();
  });

  return { socket };
}
