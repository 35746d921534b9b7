"""The FairError hierarchy and the one JSON error shape, ``{"error": {"code", "message",
"fields"}}`` with a 4xx status, for every error a client sees."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, redirect, render_template, request, url_for
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, MethodNotAllowed


class FairError(Exception):
    """A rule of the fair refused the request."""

    status = 400
    code = "bad_request"
    message = _l("请求被拒绝。")

    def __init__(
        self,
        message: str | LazyString | None = None,
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
        """The error in the request's language: messages are lazy until they are read here."""
        return {"code": self.code, "message": str(self.message),
                "fields": translate_fields(self.fields)}


class InvalidInput(FairError):
    status = 422
    code = "invalid"
    message = _l("填写的内容有误。")


class Unauthorized(FairError):
    status = 401
    code = "unauthorized"
    message = _l("请先登录。")


class Forbidden(FairError):
    status = 403
    code = "forbidden"
    message = _l("无权进行此操作。")


class NotFound(FairError):
    status = 404
    code = "not_found"
    message = _l("未找到。")


class Conflict(FairError):
    status = 409
    code = "conflict"
    message = _l("操作与当前状态冲突。")


class TooManyRequests(FairError):
    status = 429
    code = "rate_limited"
    message = _l("尝试次数过多，请稍后再试")


class PayloadTooLarge(FairError):
    status = 413
    code = "too_large"
    message = _l("上传的文件过大。")


class UnsupportedMedia(FairError):
    status = 415
    code = "unsupported_media"
    message = _l("不接受这种类型的文件。")


#: What a client reads for an HTTP error that no rule of the fair raised, by status.
STATUS_MESSAGES = {
    400: _l("请求格式有误。"),
    401: _l("请先登录。"),
    403: _l("无权进行此操作。"),
    404: _l("未找到。"),
    405: _l("不支持此请求方法。"),
    409: _l("操作与当前状态冲突。"),
    413: _l("上传的文件过大。"),
    415: _l("不接受这种类型的文件。"),
    422: _l("填写的内容有误。"),
    429: _l("请求过于频繁，请稍后再试。"),
}

#: marshmallow's and webargs' own field messages, in the fair's words. A message not listed
#: (a library upgrade may add one) stays as the library wrote it; tests/fair/test_i18n.py
#: lists the ones the fair's schemas can give.
_FIELD_MESSAGES: tuple[tuple[re.Pattern[str], LazyString], ...] = tuple(
    (re.compile(pattern), message) for pattern, message in (
        (r"Missing data for required field\.", _l("必填。")),
        (r"Field may not be null\.", _l("不能为空。")),
        (r"Unknown field\.", _l("不接受此字段。")),
        (r"Not a valid (string|integer|number|boolean|list|mapping|datetime|date|email)"
         r"( address)?\.", _l("格式不正确。")),
        (r"Invalid input type\.", _l("格式不正确。")),
        (r"Not a valid email address\.", _l("邮箱地址格式不正确。")),
        (r"Must be one of: .*\.", _l("不是可选的值。")),
        (r"Length must be between (?P<min>\d+) and (?P<max>\d+)\.",
         _l("长度须在 %(min)s 到 %(max)s 之间。")),
        (r"Longer than maximum length (?P<max>\d+)\.", _l("最多 %(max)s 个字。")),
        (r"Shorter than minimum length (?P<min>\d+)\.", _l("至少 %(min)s 个字。")),
        (r"Must be greater than or equal to (?P<min>\S+) and less than or equal to "
         r"(?P<max>\S+)\.", _l("须在 %(min)s 到 %(max)s 之间。")),
        (r"Must be greater than or equal to (?P<min>\S+)\.", _l("不能小于 %(min)s。")),
        (r"Must be less than or equal to (?P<max>\S+)\.", _l("不能大于 %(max)s。")),
        (r"String does not match expected pattern\.", _l("格式不正确。")),
        (r"Invalid value\.", _l("值无效。")),
    )
)


def translate_fields(fields: Any) -> Any:
    """Field messages as plain text in the request's language, however deeply nested."""
    if isinstance(fields, Mapping):
        return {str(name): translate_fields(value) for name, value in fields.items()}
    if isinstance(fields, list | tuple):
        return [translate_fields(value) for value in fields]
    if isinstance(fields, str):
        for pattern, message in _FIELD_MESSAGES:
            found = pattern.fullmatch(fields)
            if found is not None:
                return str(message) % found.groupdict()
        return fields
    return str(fields)


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
    # werkzeug's descriptions are English whatever the request's language: say it in ours.
    message = STATUS_MESSAGES.get(status, _l("请求被拒绝。"))
    if status >= 500:
        message = _l("服务器出错，未做任何更改。")
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110: a 405 says what is allowed
    return (
        {"error": {"code": code, "message": str(message), "fields": translate_fields(fields)}},
        status,
        headers,
    )


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
