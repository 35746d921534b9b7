"""Every extension, created unbound; create_app binds them (db is made in fair.database)."""

from __future__ import annotations

from typing import Any

from flask_babel import Babel
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_wtf import CSRFProtect

from fair.database import db
from fair.errors import http_error_payload

__all__ = ["api", "babel", "csrf", "db", "migrate", "socketio"]


class FairApi(Api):
    """flask-smorest, answering errors in the fair's one shape."""

    def handle_http_exception(self, error: Any) -> Any:
        return http_error_payload(error)


migrate = Migrate()
api = FairApi()
babel = Babel()
csrf = CSRFProtect()
socketio = SocketIO()
