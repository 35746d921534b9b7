"""A stand-in for the server's /live namespace, for browser tests of what a page does with
messages the real server sends rarely or not on demand (a `seq` heartbeat ahead of the page,
a burst, a deposit paid, the largest numbers).

Playwright intercepts the page's WebSocket to /socket.io/ and answers it here, speaking
Engine.IO 4 and Socket.IO 5 text packets as python-socketio does: the open packet, the
namespace connect, acknowledgements of the join, and events the test emits. Everything else
the page fetches (the HTML, GET .../totals) still comes from the live server.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Page, WebSocketRoute

NAMESPACE = "/live"
_EVENT = re.compile(r"42/live,(\d*)(\[.*\])", re.S)


class FakeLive:
    """Answers the page's /live socket: `ack` answers a join; `emit` sends an event."""

    def __init__(self, page: Page, *, ack: dict[str, Any]) -> None:
        self.ack = ack
        self.sockets: list[WebSocketRoute] = []
        #: Every event the page emitted: (name, payload).
        self.received: list[tuple[str, Any]] = []
        page.route_web_socket(re.compile(r"/socket\.io/"), self._accept)

    @property
    def joins(self) -> int:
        return sum(name.startswith("join_") for name, _ in self.received)

    def _accept(self, socket: WebSocketRoute) -> None:
        self.sockets.append(socket)
        socket.on_message(lambda message: self._receive(socket, message))
        socket.send("0" + json.dumps({"sid": f"fake-{len(self.sockets)}", "upgrades": [],
                                      "pingInterval": 25_000, "pingTimeout": 60_000,
                                      "maxPayload": 1_000_000}))

    def _receive(self, socket: WebSocketRoute, message: str | bytes) -> None:
        assert isinstance(message, str)
        if message.startswith("40" + NAMESPACE):
            socket.send(f"40{NAMESPACE}," + json.dumps({"sid": f"live-{len(self.sockets)}"}))
            return
        event = _EVENT.fullmatch(message)
        if event is None:
            return  # a pong
        name, payload = json.loads(event.group(2))
        self.received.append((name, payload))
        if event.group(1) and name.startswith("join_"):
            socket.send(f"43{NAMESPACE},{event.group(1)}" + json.dumps([self.ack]))

    def emit(self, event: str, payload: Any) -> None:
        """Send an event to every open socket of the page, as the server's broadcast does."""
        packet = f"42{NAMESPACE}," + json.dumps([event, payload])
        for socket in self.sockets:
            socket.send(packet)

    def drop(self) -> None:
        """Close the page's sockets as a lost connection would; the page reconnects."""
        sockets, self.sockets = self.sockets, []
        for socket in sockets:
            socket.close(code=1006, reason="gone")
