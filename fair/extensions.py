"""Every extension, created unbound; create_app binds them (db is made in fair.database)."""

from __future__ import annotations

from typing import Any

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.spec.plugins import integerconverter2paramschema
from flask_socketio import SocketIO
from flask_wtf import CSRFProtect

from fair.database import db
from fair.errors import ErrorSchema, http_error_payload
from fair.guard import IdConverter

__all__ = ["api", "babel", "csrf", "db", "limiter", "migrate", "socketio"]


class FairApi(Api):
    """flask-smorest, answering (and documenting) errors in the fair's one shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: Any) -> Any:
        return http_error_payload(error)


migrate = Migrate()
api = FairApi()
# Ids in paths are documented with their bounds (1 to 2^31-1), as fair.guard enforces them.
api.register_converter(IdConverter, integerconverter2paramschema)
babel = Babel()
csrf = CSRFProtect()
socketio = SocketIO()
#: Rate limits (fair.accounts.limits); storage from RATELIMIT_STORAGE_URI, set by create_app.
limiter = Limiter(key_func=get_remote_address)
