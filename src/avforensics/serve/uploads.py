"""Receive a multipart upload straight to a file on disk, chunk by chunk, stopping at a size limit.

Starlette's own form parsing would spool the whole file to an anonymous temporary file before the
endpoint sees it (so a too-large upload is only refused after it was all received, and then copied). Here
the request body is parsed as it arrives (python-multipart's streaming parser) and the file part is
written to its final place: memory stays flat whatever the size, and the limit is enforced on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import Request

FILE_FIELD = "file"
_MAX_FIELD_BYTES = 64 * 1024  # form fields other than the file are short (model names, fake periods)
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the small fields around the file


class UploadError(Exception):
    """An upload that cannot be accepted: `status` is the HTTP status to answer with, `reason` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Upload:
    """What a multipart request carried: the text fields and the one file, written to `path`."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    file_name: str | None = None  # as the client named it: shown to users, never used as a path
    size: int = 0
    path: Path | None = None


class _PartCollector:
    """Callbacks of the multipart parser: text fields into memory, the file part into `destination`."""

    def __init__(self, destination: Path, max_bytes: int) -> None:
        self.destination, self.max_bytes = destination, max_bytes
        self.upload = Upload()
        self._header_name = self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field_name: str | None = None
        self._field_data = bytearray()
        self._file: IO[bytes] | None = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_part, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self._headers, self._field_name, self._field_data = {}, None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            self._field_name = name
            return
        if name != FILE_FIELD:
            raise UploadError(400, f"unexpected file part {name!r}: send the video as the part "
                                   f"'{FILE_FIELD}'")
        if self.upload.path is not None:
            raise UploadError(400, "one video per job: the request has several file parts")
        self.upload.file_name = options[b"filename"].decode("utf-8", "replace")
        self.upload.path = self.destination
        self._file = self.destination.open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise UploadError(413, f"the upload is larger than the limit of {_mib(self.max_bytes)}")
            self._file.write(data[start:end])
            return
        self._field_data += data[start:end]
        if len(self._field_data) > _MAX_FIELD_BYTES:
            raise UploadError(413, f"form field {self._field_name!r} is longer than {_MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._file is not None:
            self.close()
        elif self._field_name is not None:
            value = self._field_data.decode("utf-8", "replace")
            self.upload.fields.setdefault(self._field_name, []).append(value)


async def receive_upload(request: Request, destination: Path, max_bytes: int) -> Upload:
    """Parse a multipart/form-data request, writing its file part (named 'file') to `destination`.

    Raises UploadError: 413 as soon as the declared or received size passes `max_bytes`, 415 for a body
    that is not multipart/form-data, 400 for a malformed one. The caller removes `destination` on error.
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise UploadError(415, "send the video as multipart/form-data with a part named 'file'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _MULTIPART_OVERHEAD:
        raise UploadError(413, f"the upload ({_mib(int(declared))}) is larger than the limit of "
                               f"{_mib(max_bytes)}")
    collector = _PartCollector(destination, max_bytes)
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise UploadError(400, f"malformed multipart body: {error}") from error
    finally:
        collector.close()
    return collector.upload


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MB"
