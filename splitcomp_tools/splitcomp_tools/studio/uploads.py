"""Request bodies, bounded while they stream in: uploads go straight to the workspace, never whole into memory.

`BodyLimit` refuses a request whose Content-Length is over its cap and stops one that sends more
than it. `read_form` parses a multipart upload as it arrives (python-multipart), writing each file
part to a workspace file named by an id; the client's file name is kept only to be shown. An image
is measured from its header (Pillow), so an oversized one is refused before any pixel is decoded.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import HTTPException, Request
from fastapi.datastructures import Headers
from fastapi.responses import JSONResponse
from PIL import Image
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from splitcomp_tools.studio.config import MAX_FIELD_BYTES, MAX_IMAGE_PIXELS
from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.store import display_name

MAX_HEADER_BYTES = 8 << 10  # all headers of one multipart part
IMAGE_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp", "PPM": ".ppm"}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _too_large(cap: int, what: str) -> str:
    return f"the {what} is over the studio's limit of {cap / 2**20:g} MB (start it with --max-upload-mb to change it)"


class BodyLimit:
    """ASGI middleware: multipart uploads may carry `max_upload` bytes, every other body `max_json`."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_upload: int, max_json: int) -> None:
        self.app, self.max_upload, self.max_json = app, max_upload, max_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = headers.get("content-type", "").startswith("multipart/")
        cap, what = (self.max_upload, "upload") if upload else (self.max_json, "request body")
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            await JSONResponse({"detail": _too_large(cap, what)}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise HTTPException(413, _too_large(cap, what))
            return message

        await self.app(scope, counted, send)


@dataclasses.dataclass
class UploadedFile:
    """One file part, already on disk in the workspace; `filename` is the client's name, for display only."""

    field: str
    filename: str
    path: Path
    size: int


@dataclasses.dataclass
class Form:
    fields: dict[str, str]
    files: list[UploadedFile]

    def text(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name, default)

    def files_of(self, name: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field == name]

    def discard(self) -> None:
        """Remove the files still in the upload area (those not moved into place)."""
        for f in self.files:
            f.path.unlink(missing_ok=True)


class _Parts:
    """python-multipart callbacks: headers per part, then a file on disk or a bounded text field."""

    def __init__(self, tmp_path: Callable[[], Path], max_files: int) -> None:
        self.tmp_path, self.max_files = tmp_path, max_files
        self.form = Form({}, [])
        self._headers: dict[str, str] = {}
        self._header, self._value = bytearray(), bytearray()
        self._header_bytes = 0
        self._name = ""
        self._file: BinaryIO | None = None
        self._current: UploadedFile | None = None
        self._text = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._grow(self._header, data[start:end]),
            "on_header_value": lambda data, start, end: self._grow(self._value, data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._header_bytes = {}, 0

    def _grow(self, buffer: bytearray, data: bytes) -> None:
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise Refused(400, f"a part of the upload has over {MAX_HEADER_BYTES} bytes of headers")
        buffer.extend(data)

    def _header_end(self) -> None:
        self._headers[self._header.decode("latin-1").lower()] = self._value.decode("utf-8", "replace")
        self._header.clear()
        self._value.clear()

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name")
        if name is None:
            raise Refused(400, "a part of the upload has no form field name (Content-Disposition: form-data; name=...)")
        self._name = name.decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.form.files) >= self.max_files:
                raise Refused(413, f"an upload may hold at most {self.max_files} files")
            path = self.tmp_path()
            self._current = UploadedFile(
                self._name, display_name(options[b"filename"].decode("utf-8", "replace"), "file"), path, 0
            )
            self.form.files.append(self._current)
            self._file = path.open("xb")
        else:
            self._text.clear()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._current is not None:
            self._file.write(data[start:end])
            self._current.size += end - start
            return
        if len(self._text) + end - start > MAX_FIELD_BYTES:
            raise Refused(413, f"form field {self._name!r} is over {MAX_FIELD_BYTES >> 10} KB")
        self._text.extend(data[start:end])

    def _end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._current = None, None
        else:
            self.form.fields[self._name] = self._text.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def read_form(request: Request, tmp_path: Callable[[], Path], max_files: int) -> Form:
    """The multipart form of `request`, its files written to `tmp_path()` files as the bytes arrive.

    The caller moves the files it keeps and calls `Form.discard()` for the rest.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":  # fields only (curl -d): small, BodyLimit caps it
        try:
            pairs = urllib.parse.parse_qsl((await request.body()).decode(), keep_blank_values=True, max_num_fields=64)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(400, f"malformed form: {exc}") from None
        return Form(dict(pairs), [])
    if content_type != b"multipart/form-data":
        raise Refused(415, "expected a multipart/form-data upload (a form with files)")
    boundary = options.get(b"boundary")
    if not boundary:
        raise Refused(400, "the multipart upload has no boundary in its Content-Type")
    parts = _Parts(tmp_path, max_files)
    try:
        parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]  # a plain dict of callbacks
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        parts.close()
        parts.form.discard()
        raise Refused(400, f"malformed multipart upload: {exc}") from exc
    except BaseException:
        parts.close()
        parts.form.discard()
        raise
    parts.close()
    return parts.form


def image_suffix(path: Path, what: str) -> str:
    """The file suffix of an image, read from its header; Refused when it is no image or too many pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with a reason
            with Image.open(path) as image:
                kind, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        raise Refused(413, f"{what}: has more than {MAX_IMAGE_PIXELS:,} pixels") from None
    except (OSError, ValueError, SyntaxError):
        kind, width, height = None, 0, 0
    if kind not in IMAGE_SUFFIX:
        raise Refused(415, f"{what}: not an image (PNG, JPEG, BMP, TIFF, WebP or PPM)")
    if width * height > MAX_IMAGE_PIXELS:
        raise Refused(413, f"{what}: {width}x{height} is more than {MAX_IMAGE_PIXELS:,} pixels")
    return IMAGE_SUFFIX[kind]
