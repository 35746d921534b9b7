"""The FairError hierarchy and the one JSON error shape, ``{"error": {"code", "message",
"fields"}}`` with a 4xx status, for every error a client sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, redirect, render_template, request, url_for
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, MethodNotAllowed


class FairError(Exception):
    """A rule of the fair refused the request."""

    status = 400
    code = "bad_request"
    message = "The request was refused."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "fields": self.fields}


class InvalidInput(FairError):
    status = 422
    code = "invalid"
    message = "Some fields are not valid."


class Unauthorized(FairError):
    status = 401
    code = "unauthorized"
    message = "Sign in first."


class Forbidden(FairError):
    status = 403
    code = "forbidden"
    message = "You may not do that."


class NotFound(FairError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(FairError):
    status = 409
    code = "conflict"
    message = "That conflicts with the current state."


class TooManyRequests(FairError):
    status = 429
    code = "rate_limited"
    message = "Too many tries; wait and try again."


class PayloadTooLarge(FairError):
    status = 413
    code = "too_large"
    message = "The upload is too large."


class UnsupportedMedia(FairError):
    status = 415
    code = "unsupported_media"
    message = "That kind of file is not accepted."


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={
        "description": "stable, for programs: invalid, unauthorized, forbidden, not_found, ..."})
    message = fields.String(required=True, metadata={"description": "for people"})
    fields_ = fields.Dict(required=True, data_key="fields", metadata={
        "description": "each bad field (or header) with what is wrong"})


class ErrorSchema(Schema):
    """The one error shape, as the OpenAPI document describes every error answer."""

    error = fields.Nested(ErrorDetailSchema, required=True)


def error_response(error: FairError) -> Response:
    response = jsonify({"error": error.to_dict()})
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def http_error_payload(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Turn werkzeug and webargs aborts into the one shape."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    fields: dict[str, Any] = {}
    messages = data.get("errors") or data.get("messages")
    if isinstance(messages, Mapping):
        # webargs nests by location ("json", "query", "files"); clients want field names.
        for location_errors in messages.values():
            if isinstance(location_errors, Mapping):
                fields.update(location_errors)
    code = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media",
        422: "invalid",
        429: "rate_limited",
    }.get(status, "error" if status >= 500 else "bad_request")
    message = data.get("message") or error.description or error.name
    if status == 422 and fields:
        message = "Some fields are not valid."
    if status >= 500:
        message = "Something went wrong on our side; nothing was changed."
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110: a 405 says what is allowed
    return {"error": {"code": code, "message": message, "fields": fields}}, status, headers


def register_error_handlers(app: Flask) -> None:
    """Send every error through the one shape; pages keep Flask's HTML errors."""

    @app.errorhandler(FairError)
    def handle_fair_error(error: FairError) -> Response | tuple[str, int]:
        if _wants_json():
            return error_response(error)
        if isinstance(error, Unauthorized) and request.method == "GET":
            # A page that needs a signed-in user sends the visitor to sign in, then back.
            asked_for = request.full_path.removesuffix("?")
            return redirect(url_for("account_pages.sign_in", next=asked_for))
        return render_template("error.html", error=error), error.status

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Any:
        if not _wants_json():
            if isinstance(error, MethodNotAllowed):
                return error  # werkzeug's page carries Allow itself
            if error.code == TooManyRequests.status:
                # A page's sign-in or registration past its limit: said in the page's language.
                return render_template("error.html", error=TooManyRequests()), error.code
            return error
        payload, status, headers = http_error_payload(error)
        return payload, status, headers


def _wants_json() -> bool:
    # /media/ serves files to programs as well as pages: its refusals are JSON too.
    return request.path.startswith(("/api/", "/stripe/", "/media/")) or request.is_json
