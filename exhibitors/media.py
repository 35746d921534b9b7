"""Media files: recognised by their content, verified, images re-encoded, stored by hash."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps
from werkzeug.formparser import default_stream_factory

from exhibitors.models import MediaKind
from fair.blocking import run_blocking
from fair.errors import FairError, PayloadTooLarge, UnsupportedMedia

MIB = 1024 * 1024
#: The largest upload of each kind, in bytes.
LIMITS: dict[MediaKind, int] = {
    MediaKind.image: 15 * MIB,
    MediaKind.pdf: 30 * MIB,
    MediaKind.video: 200 * MIB,
}
#: The largest body an upload view reads: the largest kind plus the multipart envelope.
MAX_UPLOAD_BODY = max(LIMITS.values()) + MIB
#: What the multipart envelope of one file may add to a body's Content-Length: boundaries, part
#: headers, the page form's CSRF token.
ENVELOPE = 64 * 1024
#: Bytes enough to tell every accepted kind from its first bytes (``sniff``).
KIND_BYTES = 12
#: Larger images are refused before they are decoded: a small file can declare a huge canvas
#: (a decompression bomb). Below Pillow's own warning threshold on purpose.
MAX_PIXELS = 40_000_000
#: Stored images fit in this square; thumbnails in the smaller one.
MAX_SIDE = 2560
THUMBNAIL_SIDE = 480
WEBP_QUALITY = 82

#: ISO base media brands of MP4 files that browsers play (QuickTime and 3GP are not MP4).
MP4_BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"mmp4", b"MSNV",
})
MAX_MP4_BOXES = 100_000

#: What each stored kind is served as, and the extension of its file.
CONTENT_TYPES: dict[MediaKind, tuple[str, str]] = {
    MediaKind.image: ("image/webp", "webp"),
    MediaKind.video: ("video/mp4", "mp4"),
    MediaKind.pdf: ("application/pdf", "pdf"),
}
ACCEPTED = _l("请上传 JPEG、PNG 或 WebP 图片，MP4 视频或 PDF 文件。")
SNIFF_BYTES = 4096
CHUNK = MIB


@dataclass(frozen=True)
class StoredFile:
    """A verified file, written under MEDIA_ROOT by the hash of its bytes."""

    kind: MediaKind
    sha256: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


def sniff(head: bytes) -> tuple[MediaKind, str]:
    """The kind and format that the first bytes announce; refuse anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return MediaKind.image, "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaKind.image, "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaKind.image, "WEBP"
    if head[4:8] == b"ftyp":
        return MediaKind.video, "MP4"
    if head.startswith(b"%PDF-"):
        return MediaKind.pdf, "PDF"
    raise UnsupportedMedia(_refusal(head), code="unsupported_media")


def _refusal(head: bytes) -> LazyString:
    """Say what the file looks like when it is markup, the dangerous case."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return _l("不接受 SVG 图片，因为它可能携带脚本。%(accepted)s", accepted=ACCEPTED)
    if text.startswith(b"<"):
        return _l("这个文件是网页或其他标记文本，不是图片。%(accepted)s", accepted=ACCEPTED)
    return _l("不接受这种文件，无论它的文件名是什么。%(accepted)s", accepted=ACCEPTED)


class LimitedUpload:
    """Where an upload's file is written while werkzeug parses the request body, refused as it
    arrives: as soon as its first bytes show its kind, if the body's Content-Length is larger
    than that kind's limit (plus ENVELOPE), before the rest is read; and, without a
    Content-Length, as soon as more than the kind's limit has come in. Reads, seeks and the rest
    go to the spool werkzeug would have used."""

    def __init__(self, spool: IO[bytes], body_length: int | None) -> None:
        self._spool = spool
        self._body_length = body_length
        self._head = b""
        self._limit: int | None = None
        self._size = 0

    def write(self, data: bytes) -> int:
        self._size += len(data)
        try:
            if self._limit is None:
                self._head += data[:SNIFF_BYTES - len(self._head)]
                self._decide()
            if self._limit is not None and self._size > self._limit:
                raise _too_large(self._limit)
        except FairError:
            self._spool.close()  # nobody else holds it yet
            raise
        return self._spool.write(data)

    def _decide(self) -> None:
        if len(self._head) < KIND_BYTES:
            return
        try:
            kind, _ = sniff(self._head)
        except UnsupportedMedia:
            if len(self._head) < SNIFF_BYTES:
                return  # refused once the head is in, so that the refusal can say what it is
            raise
        self._limit = LIMITS[kind]
        if self._body_length is not None and self._body_length > self._limit + ENVELOPE:
            raise _too_large(self._limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


def upload_stream(body_length: int | None) -> IO[bytes]:
    """A LimitedUpload on werkzeug's own spool (fair.guard.large_body's ``file_stream``)."""
    spool = default_stream_factory(body_length, None, None)
    return cast(IO[bytes], LimitedUpload(spool, body_length))


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(_l("文件超过此类文件允许的 %(size)d MB。", size=limit // MIB),
                           fields={"file": [_l("最大 %(size)d MB", size=limit // MIB)]})


def display_name(filename: str | None) -> str:
    """The uploaded name for display only: no folders, no control characters, 200 at most."""
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip()
    return name.lstrip(".")[-200:]


def store_upload(stream: BinaryIO, *, media_root: Path) -> StoredFile:
    """Recognise, verify and store an upload; raise UnsupportedMedia or PayloadTooLarge.

    Neither the name nor the declared type of an upload is trusted. The first bytes decide the
    kind (JPEG, PNG, WebP, MP4, PDF), then the whole file must prove it: Pillow decodes every
    pixel of an image, an MP4 must be a well-formed sequence of boxes starting with an ``ftyp``
    of a known brand, a PDF must start with ``%PDF-`` and end with ``%%EOF``. Images are
    re-encoded, which drops EXIF and anything hidden after the pixels. The file is stored as
    ``ab/cd/<sha256>.<ext>`` under MEDIA_ROOT, the hash being that of the stored bytes, so no
    name a user sends ever becomes a path; refusals leave nothing behind.
    """
    head = stream.read(SNIFF_BYTES)
    kind, file_format = sniff(head)
    limit = LIMITS[kind]
    with _spooled(head, stream, limit=limit, media_root=media_root) as upload:
        if kind is MediaKind.image:
            return _store_image(upload.read(), file_format, media_root=media_root)
        if kind is MediaKind.video:
            _verify_mp4(upload)
        else:
            _verify_pdf(upload)
        return _store_stream(upload, kind, media_root=media_root)


def store_recording(stream: BinaryIO, *, media_root: Path) -> StoredFile:
    """Verify and store an MP4 the fair made itself (a stream's replay): no upload limit, since
    a recording is as long as its stream."""
    _verify_mp4(stream)
    return _store_stream(stream, MediaKind.video, media_root=media_root)


def file_path(media_root: Path, sha256: str, kind: MediaKind) -> Path:
    """Where a stored file lives: ab/cd/<sha256>.<ext>."""
    return _folder(media_root, sha256) / f"{sha256}.{CONTENT_TYPES[kind][1]}"


def thumbnail_path(media_root: Path, sha256: str) -> Path:
    """Where an image's thumbnail lives, beside the image."""
    return _folder(media_root, sha256) / f"{sha256}.thumb.webp"


def discard(media_root: Path, sha256: str, kind: MediaKind) -> None:
    """Remove a stored file and its thumbnail (once no media row refers to them)."""
    file_path(media_root, sha256, kind).unlink(missing_ok=True)
    thumbnail_path(media_root, sha256).unlink(missing_ok=True)


def _folder(media_root: Path, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 in hex")
    return media_root / sha256[:2] / sha256[2:4]


@contextmanager
def _spooled(head: bytes, stream: BinaryIO, *, limit: int, media_root: Path
             ) -> Iterator[BinaryIO]:
    """Copy the upload into a temporary file beside the store, refusing it past the limit."""
    incoming = media_root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=incoming) as spool:
        size = 0
        chunk = head
        while chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            spool.write(chunk)
            chunk = stream.read(CHUNK)
        spool.seek(0)
        yield spool


def _store_image(data: bytes, file_format: str, *, media_root: Path) -> StoredFile:
    # Decoding 40 million pixels takes a second or two: off the event loop, so that one upload
    # does not stall every viewer of the worker.
    stored, thumbnail, width, height = run_blocking(_reencode, data, file_format)
    sha256 = hashlib.sha256(stored).hexdigest()
    _write(thumbnail_path(media_root, sha256), thumbnail)
    _write(file_path(media_root, sha256, MediaKind.image), stored)
    return StoredFile(kind=MediaKind.image, sha256=sha256, content_type="image/webp",
                      size=len(stored), width=width, height=height)


def _reencode(data: bytes, file_format: str) -> tuple[bytes, bytes, int, int]:
    """The image and its thumbnail as WebP, and the image's size."""
    image = _decode(data, file_format)
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    thumbnail = image.copy()
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return _encode(image), _encode(thumbnail), image.width, image.height


def _decode(data: bytes, file_format: str) -> Image.Image:
    """Decode every pixel, upright, in RGB or RGBA; refuse damaged images and bombs."""
    damaged = UnsupportedMedia(
        _l("这张 %(format)s 图片已损坏或不完整，无法读取。", format=file_format),
        code="damaged_image",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[file_format])
            if image.width * image.height > MAX_PIXELS:
                raise PayloadTooLarge(
                    _l("这张图片有 %(width)d×%(height)d 像素，最多接受 %(million)d 百万像素。",
                       width=image.width, height=image.height,
                       million=MAX_PIXELS // 1_000_000),
                    code="too_many_pixels",
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise PayloadTooLarge(_l("这张图片解压后的像素过多。"),
                                  code="too_many_pixels") from error
        except (OSError, SyntaxError, ValueError) as error:
            raise damaged from error
    transparent = upright.mode in {"RGBA", "LA", "PA"} or "transparency" in upright.info
    converted = upright.convert("RGBA" if transparent else "RGB")
    # Only the pixels travel on: EXIF (camera, GPS), XMP and comments stay behind.
    converted.info = {}
    return converted


def _encode(image: Image.Image) -> bytes:
    output = io.BytesIO()
    image.save(output, format="WEBP", quality=WEBP_QUALITY, method=4)
    return output.getvalue()


def _verify_pdf(upload: BinaryIO) -> None:
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(max(0, size - 1024))
    tail = upload.read()
    upload.seek(0)
    # Readers look for the end-of-file marker in the last kilobyte.
    if b"%%EOF" not in tail:
        raise UnsupportedMedia(_l("这个 PDF 不完整：缺少文件结束标记。"),
                               code="damaged_pdf")


def _verify_mp4(upload: BinaryIO) -> None:
    """Walk the top-level boxes: ftyp first with a known brand, a moov, nothing cut short."""
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    offset = 0
    seen: list[bytes] = []
    while offset < size and len(seen) < MAX_MP4_BOXES:
        upload.seek(offset)
        header = upload.read(16)
        if len(header) < 8:
            raise _bad_mp4(_l("有数据块被截断"))
        box_size = int.from_bytes(header[:4], "big")
        box_type = header[4:8]
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                raise _bad_mp4(_l("有数据块被截断"))
            box_size, header_size = int.from_bytes(header[8:16], "big"), 16
        elif box_size == 0:
            box_size = size - offset
        if box_size < header_size or offset + box_size > size:
            raise _bad_mp4(_l("有数据块大小不可能成立"))
        if not seen:
            if box_type != b"ftyp" or box_size < 16:
                raise _bad_mp4(_l("开头不是文件类型数据块"))
            upload.seek(offset + header_size)
            brands = upload.read(min(box_size - header_size, 4096))
            candidates = {brands[0:4]} | {brands[i : i + 4] for i in range(8, len(brands), 4)}
            if not candidates & MP4_BRANDS:
                raise _bad_mp4(_l("格式标识不是 MP4"))
        seen.append(box_type)
        offset += box_size
    if offset != size or b"moov" not in seen:
        raise _bad_mp4(_l("缺少影片头"))
    upload.seek(0)


def _bad_mp4(reason: str) -> UnsupportedMedia:
    return UnsupportedMedia(_l("这不是可以播放的 MP4 视频：%(reason)s。", reason=reason),
                            code="damaged_video")


def _store_stream(upload: BinaryIO, kind: MediaKind, *, media_root: Path) -> StoredFile:
    digest = hashlib.sha256()
    size = 0
    while chunk := upload.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    sha256 = digest.hexdigest()
    target = file_path(media_root, sha256, kind)
    if not target.exists():
        upload.seek(0)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
            shutil.copyfileobj(upload, partial, CHUNK)
        os.replace(partial.name, target)
    return StoredFile(kind=kind, sha256=sha256, content_type=CONTENT_TYPES[kind][0], size=size)


def _write(target: Path, data: bytes) -> None:
    """Write a file whole or not at all; the same hash means the same bytes are there."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
        partial.write(data)
    os.replace(partial.name, target)
