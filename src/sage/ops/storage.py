"""Where backups live: `s3://bucket/prefix` (production) or `file:///path` (embedded default).

Both targets make an object visible only once it is whole. S3 uploads are multipart
(streamed, no temporary file) and become an object only on CompleteMultipartUpload; an
aborted upload leaves nothing. File uploads are written beside the target under a
dot-name and renamed into place after fsync. An upload killed without a chance to abort
(SIGKILL, a lost task) is invisible too and is swept by the next backup (and, on S3, by
the bucket's AbortIncompleteMultipartUpload lifecycle rule).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from sage.ops.common import OpsError

MiB = 1024 * 1024
S3_MIN_PART = 5 * MiB  # every part but the last must be at least this (S3 limit)
S3_MAX_PART = 5 * 1024 * MiB
S3_MAX_PARTS = 10_000
DEFAULT_PART = 8 * MiB
# Parts are sized from an estimate of the dump; the estimate can be wrong, so every
# PART_GROWTH_EVERY parts the part size doubles. 2,500 parts each of 1x, 2x, 4x, 8x the
# base fit 37,500 base parts in S3's 10,000: a dump 4x larger than planned still fits.
PART_GROWTH_EVERY = 2_500
PLANNED_PARTS = 9_000
# Parts held in memory at once (being uploaded, or waiting for a slot) stay under this, so
# the 512 MB ops task never runs out of memory whatever the part size.
IN_FLIGHT_BUDGET = 128 * MiB
MAX_IN_FLIGHT = 3
READ_CHUNK = MiB


def choose_part_size(estimated_bytes: int) -> int:
    """A base part size (whole MiB, >= 8 MiB) that fits `estimated_bytes` in PLANNED_PARTS parts."""
    needed = -(-max(estimated_bytes, 0) // PLANNED_PARTS)
    size = max(DEFAULT_PART, -(-needed // MiB) * MiB)
    return min(size, S3_MAX_PART)


def part_size_for(part_number: int, base: int) -> int:
    """Size of part `part_number` (1-based) under the doubling schedule."""
    growth: int = 2 ** ((part_number - 1) // PART_GROWTH_EVERY)
    return min(base * growth, S3_MAX_PART)


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the target's prefix
    size: int
    modified: datetime


class Upload(Protocol):
    """A streamed write that becomes visible only on complete()."""

    def write(self, data: bytes) -> None: ...
    def complete(self) -> int: ...  # returns the stored size
    def abort(self) -> None: ...


class BackupStorage(Protocol):
    url: str

    def begin_upload(self, key: str, *, part_size: int = DEFAULT_PART, content_type: str = ...) -> Upload: ...
    def list_objects(self) -> list[StoredObject]: ...
    def size(self, key: str) -> int | None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def iter_chunks(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def sweep_incomplete(self, older_than: timedelta) -> list[str]: ...


def open_storage(url: str) -> BackupStorage:
    """The target named by SAGE_BACKUP_URL."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise OpsError(f"SAGE_BACKUP_URL {url!r} names no bucket (expected s3://bucket/prefix)", 2)
        return S3Storage(parts.netloc, parts.path.strip("/"))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise OpsError(f"SAGE_BACKUP_URL {url!r} must be a local file:///path", 2)
        return FileStorage(Path(unquote(parts.path)))
    raise OpsError(f"SAGE_BACKUP_URL must be s3://bucket/prefix or file:///path, not {parts.scheme or url!r}", 2)


# --- local directory -------------------------------------------------------------------------

PARTIAL_SUFFIX = ".partial"


class FileUpload:
    def __init__(self, directory: Path, key: str) -> None:
        self._final = directory / key
        self._temp = directory / f".{key}.{os.getpid()}{PARTIAL_SUFFIX}"
        self._file = self._temp.open("wb")
        self._written = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._written += len(data)

    def complete(self) -> int:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._temp.replace(self._final)
        _fsync_dir(self._final.parent)
        return self._final.stat().st_size

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._temp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStorage:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.url = directory.as_uri()

    def _ensure(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OpsError(f"cannot create the backup directory {self.directory}: {exc.strerror}") from None

    def begin_upload(self, key: str, *, part_size: int = DEFAULT_PART, content_type: str = "") -> Upload:
        self._ensure()
        return FileUpload(self.directory, key)

    def list_objects(self) -> list[StoredObject]:
        if not self.directory.exists():
            return []
        out = []
        for path in self.directory.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            stat = path.stat()
            out.append(StoredObject(path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
        return sorted(out, key=lambda o: o.key)

    def size(self, key: str) -> int | None:
        path = self.directory / key
        return path.stat().st_size if path.is_file() else None

    def read_bytes(self, key: str) -> bytes:
        try:
            return (self.directory / key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        upload = self.begin_upload(key)
        try:
            upload.write(data)
            upload.complete()
        except BaseException:
            upload.abort()
            raise

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            handle = (self.directory / key).open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        with handle:
            while chunk := handle.read(READ_CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        (self.directory / key).unlink(missing_ok=True)

    def sweep_incomplete(self, older_than: timedelta) -> list[str]:
        if not self.directory.exists():
            return []
        cutoff = datetime.now(UTC) - older_than
        swept = []
        for path in self.directory.glob(f".*{PARTIAL_SUFFIX}"):
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff:
                path.unlink(missing_ok=True)
                swept.append(path.name)
        return swept


# --- S3 ------------------------------------------------------------------------------------------


class S3Upload:
    """A multipart upload fed sequentially; parts go up on a small thread pool.

    At most `in_flight` parts upload at once and the parts held in memory stay within
    IN_FLIGHT_BUDGET (or one part, if a part is larger), whatever the size of the dump.
    """

    def __init__(
        self, client: Any, bucket: str, key: str, *, part_size: int, content_type: str, in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        if part_size < S3_MIN_PART:
            raise ValueError(f"part size must be at least {S3_MIN_PART} bytes")

        self._client = client
        self._bucket = bucket
        self._key = key
        self._base = part_size
        self._buffer = bytearray()
        self._next_part = 1
        self._parts: dict[int, str] = {}
        self._futures: list[Future[None]] = []
        self._room = threading.Condition()
        self._bytes_in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="s3-part")
        self._size = 0
        self._closed = False
        created = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        self.upload_id: str = created["UploadId"]

    def write(self, data: bytes) -> None:
        self._raise_failed_part()
        self._buffer += data
        while len(self._buffer) >= part_size_for(self._next_part, self._base):
            size = part_size_for(self._next_part, self._base)
            self._submit(bytes(self._buffer[:size]))
            del self._buffer[:size]

    def _submit(self, body: bytes) -> None:
        if self._next_part > S3_MAX_PARTS:
            raise OpsError("the backup outgrew S3's 10,000-part limit; the upload was aborted")
        number = self._next_part
        self._next_part += 1
        self._size += len(body)
        with self._room:
            # Always room for one part, however large; more only within the memory budget.
            while self._bytes_in_flight and self._bytes_in_flight + len(body) > IN_FLIGHT_BUDGET:
                self._room.wait()
            self._bytes_in_flight += len(body)
        self._raise_failed_part()
        self._futures.append(self._pool.submit(self._upload_part, number, body))

    def _upload_part(self, number: int, body: bytes) -> None:
        try:
            response = self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self.upload_id, PartNumber=number, Body=body
            )
            self._parts[number] = response["ETag"]
        finally:
            with self._room:
                self._bytes_in_flight -= len(body)
                self._room.notify_all()

    def _raise_failed_part(self) -> None:
        pending = []
        for future in self._futures:
            if not future.done():
                pending.append(future)
            elif (error := future.exception()) is not None:
                raise error
        self._futures = pending

    def complete(self) -> int:
        if self._buffer or self._next_part == 1:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        for future in self._futures:
            future.result()
        self._pool.shutdown(wait=True)
        parts = [{"PartNumber": n, "ETag": self._parts[n]} for n in sorted(self._parts)]
        self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )
        self._closed = True
        return self._size

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self.upload_id)
        except Exception:  # noqa: S110 - already gone; the lifecycle rule is the backstop
            pass


class S3Storage:
    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3  # only the S3 target needs it; honours AWS_ENDPOINT_URL itself

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self._client = boto3.client("s3")

    def _key(self, key: str) -> str:
        return self.prefix + key

    def begin_upload(
        self, key: str, *, part_size: int = DEFAULT_PART, content_type: str = "application/octet-stream"
    ) -> Upload:
        return S3Upload(self._client, self.bucket, self._key(key), part_size=part_size, content_type=content_type)

    def list_objects(self) -> list[StoredObject]:
        out = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if name and "/" not in name:
                    out.append(StoredObject(name, int(item["Size"]), item["LastModified"]))
        return sorted(out, key=lambda o: o.key)

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return bytes(self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(key) from None
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType="application/json")

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(key) from None
            raise
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def sweep_incomplete(self, older_than: timedelta) -> list[str]:
        cutoff = datetime.now(UTC) - older_than
        swept = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    swept.append(upload["Key"])
        return swept
