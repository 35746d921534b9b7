/* The unread count in the header, live: the server sends `unread` to this user's own sockets
 * (joined when the socket connects with the session cookie). After every (re)connect the page
 * reads the count again, so that what it missed while offline is counted. Needs socket.io-client.
 */
import { callApi } from "/static/js/api.js";

const badge = document.querySelector("[data-unread]");

function show(unread) {
  if (!badge) return;
  badge.textContent = String(unread);
  badge.hidden = unread === 0;
  badge.dataset.unread = String(unread);
}

if (badge && typeof io === "function") {
  const socket = io("/live", { transports: ["websocket", "polling"] });
  socket.on("unread", (message) => show(message.unread));
  socket.on("connect", async () => {
    const answer = await callApi("GET", "/api/v1/me/notifications/unread").catch(() => null);
    if (answer && answer.ok) show(answer.data.unread);
  });
}
