"""Media uploads: recognised by content, verified, re-encoded, stored by hash, served safely."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from exhibitors import media
from exhibitors.models import Exhibitor, Media, MediaKind, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair

Headers = Callable[[User], dict[str, str]]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b"<script>alert(1)</script></svg>")


def picture(file_format: str = "PNG", size: tuple[int, int] = (64, 48), *,
            mode: str = "RGB", exif: Image.Exif | None = None) -> bytes:
    colour = {"RGB": (200, 30, 30), "RGBA": (200, 30, 30, 128), "L": 200}[mode]
    image = Image.new(mode, size, colour)
    output = io.BytesIO()
    extra = {"exif": exif} if exif is not None else {}
    image.save(output, format=file_format, **extra)
    return output.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def mp4(brand: bytes = b"isom", compatible: bytes = b"isomiso2mp41") -> bytes:
    """The smallest MP4 this checks: a file-type box and a movie box."""
    return box(b"ftyp", brand + b"\0\0\x02\0" + compatible) + box(
        b"moov", box(b"mvhd", bytes(100)))


@pytest.fixture
def owned(fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
          make_project: Callable[..., Project]) -> tuple[Project, User]:
    _, user = make_exhibitor(fair)
    return make_project(fair, user=user), user


def upload(client: FlaskClient, project: Project, data: bytes, headers: dict[str, str],
           name: str = "file.bin", content_type: str = "application/octet-stream"
           ) -> TestResponse:
    # Encoded in memory: the test client would spool a large body to a file it never closes.
    boundary, body = encode_multipart(
        {"file": FileStorage(io.BytesIO(data), filename=name, content_type=content_type)})
    return client.post(f"/api/v1/projects/{project.id}/media", headers=headers, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def fetch(client: FlaskClient, url: str, headers: dict[str, str] | None = None
          ) -> TestResponse:
    """GET a file and close it, as a browser would after reading it."""
    response = client.get(url, headers=headers)
    response.get_data()
    response.close()
    return response


def stored_files(app: Flask) -> list[Path]:
    root = Path(app.config["MEDIA_ROOT"])
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def media_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Media)) or 0


@pytest.mark.parametrize(("data", "name", "kind", "content_type"), [
    (picture("JPEG"), "photo.jpg", "image", "image/webp"),
    (picture("PNG"), "poster.png", "image", "image/webp"),
    (picture("WEBP"), "banner.webp", "image", "image/webp"),
    (mp4(), "show.mp4", "video", "video/mp4"),
    (mp4(b"mp42"), "show.mp4", "video", "video/mp4"),
    (PDF, "brochure.pdf", "pdf", "application/pdf"),
])
def test_each_accepted_kind_is_stored_under_its_hash(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers,
    data: bytes, name: str, kind: str, content_type: str,
) -> None:
    project, user = owned
    response = upload(client, project, data, token_for(user), name=name)
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["kind"], body["content_type"], body["original_name"]) == (kind, content_type,
                                                                            name)
    sha256 = body["url"].rsplit("/", 1)[1]
    extension = {"image": "webp", "video": "mp4", "pdf": "pdf"}[kind]
    path = Path(app.config["MEDIA_ROOT"]) / sha256[:2] / sha256[2:4] / f"{sha256}.{extension}"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert body["size"] == path.stat().st_size
    if kind != "image":
        assert path.read_bytes() == data  # only images are re-encoded

    served = fetch(client, body["url"])
    assert served.status_code == 200
    assert served.mimetype == content_type
    assert served.data == path.read_bytes()
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in served.headers["Cache-Control"]
    assert "public" in served.headers["Cache-Control"]
    assert "immutable" in served.headers["Cache-Control"]


def test_the_declared_type_and_name_are_ignored(
    client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    response = upload(client, project, PDF, token_for(user), name="cat.png",
                      content_type="image/png")
    assert response.status_code == 201
    assert response.json["kind"] == "pdf"


@pytest.mark.parametrize(("data", "message"), [
    (HTML, "是网页"),
    (b"\xef\xbb\xbf\n  " + HTML, "是网页"),
    (SVG, "SVG"),
    (b"GIF89a" + bytes(40), "不接受这种文件"),
    (b"MZ\x90\x00" + bytes(60), "不接受这种文件"),
    (b"", "不接受这种文件"),
])
@pytest.mark.parametrize("name", ["picture.png", "photo.jpg"])
def test_markup_and_other_files_are_refused_whatever_their_name(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers,
    data: bytes, message: str, name: str,
) -> None:
    project, user = owned
    response = upload(client, project, data, token_for(user), name=name,
                      content_type="image/png")
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media"
    assert message in response.json["error"]["message"]
    assert stored_files(app) == []
    assert media_rows() == 0


@pytest.mark.parametrize(("data", "code"), [
    (picture("PNG")[:-30], "damaged_image"),  # cut short: Pillow cannot decode every pixel
    (b"\xff\xd8\xff\xe0" + b"<html><script>alert(1)</script></html>", "damaged_image"),
    (b"\x89PNG\r\n\x1a\n" + HTML, "damaged_image"),
    (b"RIFF\0\0\0\0WEBPVP8 " + SVG, "damaged_image"),
    (b"%PDF-1.4\n<html><script>alert(1)</script>", "damaged_pdf"),  # no %%EOF
    (mp4(b"qt  ", b"qt  "), "damaged_video"),  # QuickTime, not MP4
    (mp4()[:-10], "damaged_video"),  # a box cut short
    (box(b"ftyp", b"isom\0\0\0\0"), "damaged_video"),  # no movie box
    (b"\0\0\0\x08ftyp" + HTML, "damaged_video"),
])
def test_files_that_only_start_like_an_accepted_kind_are_refused(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers,
    data: bytes, code: str,
) -> None:
    project, user = owned
    response = upload(client, project, data, token_for(user), name="x.png",
                      content_type="image/png")
    assert response.status_code == 415, response.json
    assert response.json["error"]["code"] == code
    assert stored_files(app) == []
    assert media_rows() == 0


@pytest.mark.parametrize(("name", "shown"), [
    ("../../etc/passwd", "passwd"),
    ("/var/www/.htaccess", "htaccess"),
    ("海报\x00.png", "海报.png"),
    ("", ""),
])
def test_a_path_in_the_file_name_never_becomes_a_path(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers,
    name: str, shown: str,
) -> None:
    project, user = owned
    response = upload(client, project, PDF, token_for(user), name=name)
    assert response.status_code == 201, response.json
    assert response.json["original_name"] == shown
    root = Path(app.config["MEDIA_ROOT"])
    sha256 = hashlib.sha256(PDF).hexdigest()
    assert stored_files(app) == [root / sha256[:2] / sha256[2:4] / f"{sha256}.pdf"]


def test_an_image_over_its_limit_is_refused_with_413(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    assert {MediaKind.image: 15 * 2**20, MediaKind.pdf: 30 * 2**20,
                            MediaKind.video: 200 * 2**20} == media.LIMITS
    too_large = b"\xff\xd8\xff\xe0" + bytes(15 * 2**20)
    response = upload(client, project, too_large, token_for(user), name="big.jpg")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert stored_files(app) == []
    assert media_rows() == 0


class Body(io.RawIOBase):
    """A request body that counts how much of it the server read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._data.readinto(buffer)
        self.read_bytes += count
        return count


def streamed_upload(client: FlaskClient, project: Project, data: bytes,
                    headers: dict[str, str], *, content_length: bool) -> tuple[TestResponse, Body]:
    boundary, encoded = encode_multipart(
        {"file": FileStorage(io.BytesIO(data), filename="big.jpg")})
    body = Body(encoded)
    response = client.post(
        f"/api/v1/projects/{project.id}/media", headers=headers, input_stream=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        # Without a Content-Length, a server reads a body that says where it ends (chunked).
        environ_overrides={} if content_length else {"CONTENT_LENGTH": "",
                                                     "wsgi.input_terminated": True})
    return response, body


def test_an_images_limit_is_checked_from_content_length_before_the_body_is_read(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    # Over the image limit, well under the largest kind's (video).
    data = b"\xff\xd8\xff\xe0" + bytes(20 * media.MIB)
    response, body = streamed_upload(client, project, data, token_for(user),
                                     content_length=True)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert "15 MB" in response.json["error"]["message"]
    assert body.read_bytes < media.MIB
    assert stored_files(app) == []
    assert media_rows() == 0


def test_without_content_length_an_image_is_refused_once_past_its_limit(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    data = b"\xff\xd8\xff\xe0" + bytes(40 * media.MIB)
    response, body = streamed_upload(client, project, data, token_for(user),
                                     content_length=False)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert media.LIMITS[MediaKind.image] < body.read_bytes < (
        media.LIMITS[MediaKind.image] + media.MIB)
    assert stored_files(app) == []
    assert media_rows() == 0


@pytest.mark.parametrize(("kind", "data"), [
    (MediaKind.pdf, PDF + b"%" * 200),
    (MediaKind.video, mp4() + box(b"free", bytes(200))),
])
def test_each_kind_has_its_own_size_limit(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers,
    monkeypatch: pytest.MonkeyPatch, kind: MediaKind, data: bytes,
) -> None:
    project, user = owned
    monkeypatch.setitem(media.LIMITS, kind, len(data) - 1)
    response = upload(client, project, data, token_for(user))
    assert response.status_code == 413
    assert stored_files(app) == []
    monkeypatch.setitem(media.LIMITS, kind, len(data))
    assert upload(client, project, data, token_for(user)).status_code == 201


def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    bomb = picture("PNG", (10_000, 5_000), mode="L")  # 50 megapixels in a few kilobytes
    assert len(bomb) < 200_000
    response = upload(client, project, bomb, token_for(user), name="bomb.png")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_many_pixels"
    assert stored_files(app) == []


def test_images_are_re_encoded_upright_without_exif_and_fit_2560(
    app: Flask, client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to show
    exif[0x010F] = "SecretCam"  # the camera maker
    original = picture("JPEG", (3000, 1000), exif=exif)
    assert b"SecretCam" in original
    response = upload(client, project, original, token_for(user), name="photo.jpg")
    assert response.status_code == 201
    # Turned upright (1000 × 3000), then shrunk to fit 2560.
    assert (response.json["width"], response.json["height"]) == (853, 2560)

    stored = fetch(client, response.json["url"]).data
    assert b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "WEBP"
        assert image.size == (853, 2560)
        assert not image.getexif()

    thumbnail = fetch(client, response.json["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.mimetype == "image/webp"
    assert thumbnail.headers["X-Content-Type-Options"] == "nosniff"
    with Image.open(io.BytesIO(thumbnail.data)) as image:
        assert image.size == (160, 480)


def test_transparency_survives_re_encoding(
    client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    response = upload(client, project, picture("PNG", mode="RGBA"), token_for(user))
    with Image.open(io.BytesIO(fetch(client, response.json["url"]).data)) as image:
        assert image.mode == "RGBA"


def test_only_its_exhibitor_uploads(
    app: Flask, client: FlaskClient, fair: Fair, owned: tuple[Project, User],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], make_user: Callable[..., User],
    token_for: Headers,
) -> None:
    project, _ = owned
    _, rival = make_exhibitor(fair)
    refused = upload(client, project, PDF, token_for(rival))
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "not_yours"
    assert upload(client, project, PDF, token_for(make_user(Role.buyer))).status_code == 403
    assert upload(client, project, PDF, {}).status_code == 401
    assert stored_files(app) == []


def test_a_missing_file_field_is_invalid(
    client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    response = client.post(f"/api/v1/projects/{project.id}/media", headers=token_for(user),
                           data={"other": "x"}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "file" in response.json["error"]["fields"]


def test_pdfs_download_as_sandboxed_attachments(
    client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    body = upload(client, project, PDF, token_for(user), name="宣传册.pdf").json
    served = fetch(client, body["url"])
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert fetch(client, f"{body['url']}/thumb").status_code == 404


def test_media_of_a_draft_are_private_to_its_exhibitor(
    client: FlaskClient, fair: Fair, make_exhibitor: Callable[..., tuple[Exhibitor, User]],
    make_project: Callable[..., Project], token_for: Headers,
) -> None:
    _, user = make_exhibitor(fair)
    draft = make_project(fair, user=user, publish=False)
    body = upload(client, draft, picture(), token_for(user)).json
    assert fetch(client, body["url"]).status_code == 404
    own = fetch(client, body["url"], headers=token_for(user))
    assert own.status_code == 200
    assert "private" in own.headers["Cache-Control"]
    assert fetch(client, "/media/" + "0" * 64).status_code == 404
    assert fetch(client, "/media/not-a-hash").status_code == 404


def test_the_exhibitor_deletes_media_and_unused_files_go(
    app: Flask, client: FlaskClient, fair: Fair, owned: tuple[Project, User],
    make_exhibitor: Callable[..., tuple[Exhibitor, User]], token_for: Headers,
) -> None:
    project, user = owned
    first = upload(client, project, PDF, token_for(user)).json
    second = upload(client, project, PDF, token_for(user)).json
    assert first["url"] == second["url"]  # the same bytes are stored once
    _, rival = make_exhibitor(fair)
    assert client.delete(f"/api/v1/media/{first['id']}",
                         headers=token_for(rival)).status_code == 403

    assert client.delete(f"/api/v1/media/{first['id']}",
                         headers=token_for(user)).status_code == 204
    assert len(stored_files(app)) == 1  # still used by the second
    assert client.delete(f"/api/v1/media/{second['id']}",
                         headers=token_for(user)).status_code == 204
    assert stored_files(app) == []
    assert media_rows() == 0
    assert client.delete(f"/api/v1/media/{second['id']}",
                         headers=token_for(user)).status_code == 404


def test_the_project_lists_its_media(
    client: FlaskClient, owned: tuple[Project, User], token_for: Headers
) -> None:
    project, user = owned
    upload(client, project, picture(), token_for(user), name="封面.png")
    listed = client.get(f"/api/v1/projects/{project.id}").json["media"]
    assert [(item["kind"], item["original_name"]) for item in listed] == [("image", "封面.png")]
    assert listed[0]["thumbnail_url"].endswith("/thumb")


def test_display_name_keeps_only_the_last_part() -> None:
    assert media.display_name("../../etc/passwd") == "passwd"
    assert media.display_name("..\\..\\windows\\win.ini") == "win.ini"
    assert media.display_name(None) == ""
    assert len(media.display_name("长" * 500 + ".pdf")) == 200
