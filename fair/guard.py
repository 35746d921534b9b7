"""What a request must be before any view reads it: a small body (only upload views take large
ones), JSON nested at most 64 deep, ids the database can hold, and text without U+0000 or lone
surrogates, which PostgreSQL and UTF-8 cannot store."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from flask import Flask, Request, current_app, request
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DataError
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, Map

from fair.errors import FairError, InvalidInput, PayloadTooLarge

#: A JSON body is refused (413) past this many bytes, before it is read.
MAX_JSON_BYTES = 64 * 1024
#: ...and (400) when nested deeper than this: Python's parser recurses, and 100,000 levels
#: would overflow its stack.
MAX_JSON_DEPTH = 64
#: Ids are 32-bit integers in the database: a larger one cannot name anything.
MAX_ID = 2**31 - 1

#: U+0000 (PostgreSQL refuses it in text) and lone surrogates (UTF-8 cannot encode them; a
#: well-formed character outside the BMP is one code point in Python, never a surrogate).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
#: JSON strings, skipped when counting brackets (a "[" inside a string opens nothing); written
#: as "unrolled" (runs of plain characters between escapes), twice as fast as an alternation.

F = TypeVar("F", bound=Callable[..., Any])
BODY_LIMIT_ATTRIBUTE = "fair_body_limit"
FILE_STREAM_ATTRIBUTE = "fair_file_stream"
#: Where werkzeug writes an uploaded file while it parses the body: called with the body's
#: Content-Length (None when it streams in without one); may refuse the upload as it arrives.
FileStream = Callable[[int | None], IO[bytes]]


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: 1 to 2^31-1, so a larger id is a 404 and never reaches the
    database (PostgreSQL refuses it as out of range, SQLite past 2^63)."""

    def __init__(self, url_map: Map, fixed_digits: int = 0, min: int | None = 1,
                 max: int | None = MAX_ID, signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> int:
        number = int(value)
        # NotFound, not werkzeug's ValidationError: that one makes the router try the other
        # rules of the path and answer 405 when one of them takes another method.
        if (self.min is not None and number < self.min) or (
                self.max is not None and number > self.max):
            raise NotFound()
        return number


def large_body(max_bytes: int, *, file_stream: FileStream | None = None
               ) -> Callable[[F], F]:
    """Let this view (an upload) take a body of up to `max_bytes`: refused from Content-Length
    before it is read, or while it streams in without one. `file_stream`, when given, receives
    each uploaded file as the body is parsed (exhibitors.media checks each kind's own limit
    there, from its first bytes)."""

    def mark(view: F) -> F:
        setattr(view, BODY_LIMIT_ATTRIBUTE, max_bytes)
        if file_stream is not None:
            setattr(view, FILE_STREAM_ATTRIBUTE, file_stream)
        return view

    return mark


class GuardedRequest(Request):
    """A request whose uploaded files go where their view says (``large_body``)."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None
                         ) -> IO[bytes]:
        view = current_app.view_functions.get(self.endpoint or "")
        file_stream: FileStream | None = getattr(view, FILE_STREAM_ATTRIBUTE, None)
        if file_stream is None:
            return super()._get_file_stream(total_content_length, content_type, filename,
                                            content_length)
        return file_stream(total_content_length)


def text_problem(value: str) -> LazyString | None:
    """Why this text cannot be stored, or None when it can."""
    match = _BAD_TEXT.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return _l("文字中不能含有 NUL 字符（U+0000）。")
    return _l("文字中不能含有不成对的代理字符（无效的 Unicode）。")


def check_text(data: Any, *, location: str = "json") -> None:
    """Refuse (400 `bad_text`) any string in `data`, key or value, that cannot be stored."""
    for path, problem in _text_problems(data, location):
        raise InvalidInput(problem, code="bad_text", fields={path: [problem]})


def json_depth(data: Any) -> int:
    """How deeply parsed JSON nests arrays and objects: its arrays and objects level by level
    (no recursion, so a deep value cannot overflow the stack here)."""
    depth, level = 0, [data] if isinstance(data, dict | list) else []
    while level:
        depth += 1
        level = [item for value in level
                 for item in (value.values() if isinstance(value, dict) else value)
                 if isinstance(item, dict | list)]
    return depth


def _text_problems(data: Any, path: str) -> Iterator[tuple[str, LazyString]]:
    # Iterative: a deep body must not overflow the stack here either.
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                yield where, problem
        elif isinstance(value, dict):
            for key, item in value.items():
                key_text = str(key)
                problem = text_problem(key_text)
                if problem is not None:
                    yield where, problem
                stack.append((key_text if where == path else f"{where}.{key_text}", item))
        elif isinstance(value, list):
            stack.extend((where, item) for item in value)


def _guard_request() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, BODY_LIMIT_ATTRIBUTE, None)
    if limit is not None:
        request.max_content_length = limit
    problem = text_problem(request.path)
    if problem is not None:
        raise InvalidInput(problem, code="bad_text", fields={"path": [problem]})
    for name, values in request.args.lists():
        check_text({name: values}, location="query")
    if request.method == "PATCH" and request.routing_exception is None and not (
            request.is_json and request.content_length) and request.path.startswith("/api/"):
        # A change needs its JSON object; without one a PATCH would answer 200 for nothing.
        raise FairError(_l("请以 JSON 对象发送要修改的内容。"), code="body_required")
    if request.is_json:
        _guard_json()
    elif request.mimetype == "application/x-www-form-urlencoded":
        check_text(request.form.to_dict(flat=False), location="form")


def _guard_json() -> None:
    length = request.content_length
    if length is not None and length > MAX_JSON_BYTES:
        raise PayloadTooLarge(_l("JSON 请求体最多 %(kb)s KB。", kb=MAX_JSON_BYTES // 1024),
                              code="too_large")
    # Without a Content-Length the body streams in: werkzeug stops reading past this (413).
    request.max_content_length = MAX_JSON_BYTES
    try:
        data = request.get_json(silent=True)  # malformed JSON is the schema's 400 to answer
    except RecursionError:
        # The parser gives up on a body nested past Python's recursion limit; the walk below,
        # over what it parsed, is the cheaper check for a batch of hundreds of objects.
        data, deep = None, True
    else:
        deep = data is not None and json_depth(data) > MAX_JSON_DEPTH
    if deep:
        raise FairError(_l("JSON 最多嵌套 %(depth)s 层。", depth=MAX_JSON_DEPTH),
                        code="too_deep")
    if data is not None and _may_hold_bad_text(request.get_data(cache=True)):
        check_text(data)


def _may_hold_bad_text(body: bytes) -> bool:
    """Whether a JSON body may parse into U+0000 or a lone surrogate. Only the character
    itself, a \\u escape, or bytes outside ASCII (a surrogate in UTF-8, a body in UTF-16) can
    make one: an ASCII body without NUL and without \\u is clean whatever its size, and its
    strings need not be walked one by one (a beacon batch holds thousands)."""
    return not body.isascii() or b"\x00" in body or b"\\u" in body


def init_app(app: Flask) -> None:
    """Install the checks; call before any other extension reads a request's body (CSRF does),
    and before any route is added (ids are bounded by the converter)."""
    app.url_map.converters["int"] = IdConverter
    app.request_class = GuardedRequest
    app.before_request(_guard_request)

    @app.errorhandler(DataError)
    def refuse_unstorable(error: DataError) -> Any:
        # The last line of defence: a value the database refused (out of range, bad text) is
        # the request's fault, and its transaction rolled back, so nothing changed.
        return app.handle_user_exception(
            InvalidInput(_l("有一个值超出了可以保存的范围。"), code="out_of_range"))
