"""Notifications by e-mail when SMTP is configured: against a local SMTP server, each sent once."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message

import pytest
from flask import Flask

from fair.accounts.models import Role, User
from fair.extensions import db
from inbox import service


class _Session(socketserver.StreamRequestHandler):
    """Just enough of SMTP (RFC 5321) for smtplib: greet, take one message at a time."""

    def handle(self) -> None:
        received: list[Message] = self.server.received  # type: ignore[attr-defined]
        self.wfile.write(b"220 localhost ready\r\n")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250 localhost\r\n")
            elif command == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk
                received.append(message_from_bytes(body))
                self.wfile.write(b"250 queued\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp(app: Flask) -> Iterator[list[Message]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Session)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.server_address[1],
                      MAIL_FROM="fair@example.com")
    yield server.received  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_a_notification_is_e_mailed_once_even_when_retried(
    smtp: list[Message], make_user: Callable[..., User]
) -> None:
    user = make_user(Role.buyer)
    for _ in range(2):  # a retried request names the same key
        service.notify(user.id, kind="need_closing", data={"need": "非遗课"}, link="/needs/7",
                       dedupe_key="need_closing:7")
        db.session.commit()
    assert len(smtp) == 1
    mail = smtp[0]
    assert mail["To"] == user.email
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject == "您的需求“非遗课”将在24小时内截止"
    notification = service.list_notifications(user)[0]
    assert service.send_email(notification.id) is False  # a second run sends nothing
    assert len(smtp) == 1


def test_without_smtp_nothing_is_e_mailed(app: Flask, make_user: Callable[..., User]) -> None:
    user = make_user(Role.buyer)
    service.notify(user.id, kind="need_closing", data={"need": "x"}, link="",
                   dedupe_key="k")
    db.session.commit()
    assert service.list_notifications(user)[0].emailed_at is None
