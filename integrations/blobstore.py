"""Where uploaded document bytes live. The database keeps only metadata and the blob's key.

Keys are relative, slash-separated paths chosen by us, never by a client, and content-addressed
(``cases/<ref>/<sha256>``): writing the same bytes twice is harmless, and a key names exactly one
content for ever.

Adding another backend (S3, GCS, Azure Blob): implement the four methods of ``BlobStore`` in a
class of its own, e.g. ``S3BlobStore(bucket, prefix, client)`` with ``put`` = ``put_object``
(a single PUT is already atomic on S3: readers see the old object or the new one, never a
partial one), ``get`` = ``get_object`` (raise ``BlobNotFoundError`` on ``NoSuchKey``),
``exists`` = ``head_object`` and ``delete`` = ``delete_object``. Validate keys with
``validate_key`` too, so both backends accept the same keys. Then return it from the API's
``get_blob_store`` when the settings ask for it. The methods are synchronous, like the
boto3/azure SDKs; async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 300  # documents.storage_key is String(300)
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TMP_PREFIX = ".tmp-"


class InvalidBlobKeyError(ValueError):
    """The key is not a safe relative path (absolute, ``..``, NUL, odd characters)."""


class BlobNotFoundError(KeyError):
    """No blob is stored under the key."""


@runtime_checkable
class BlobStore(Protocol):
    """Byte storage addressed by validated relative keys. Implementations must write atomically."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any earlier content in one step."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; ``BlobNotFoundError`` if there are none."""
        ...

    def exists(self, key: str) -> bool:
        """True if a blob is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob under ``key``; nothing happens if there is none."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path, else raise ``InvalidBlobKeyError``.

    Every segment must be a plain name (letters, digits, ``.``, ``_``, ``-``, not starting with a
    dot), so ``..``, absolute paths, backslashes, NUL and hidden temp names can never be keys.
    """
    if not isinstance(key, str) or not key:
        raise InvalidBlobKeyError("blob key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKeyError(f"blob key longer than {MAX_KEY_LENGTH} characters")
    if "\x00" in key:
        raise InvalidBlobKeyError("blob key contains NUL")
    if key.startswith("/") or "\\" in key:
        raise InvalidBlobKeyError("blob key must be a relative path with '/' separators")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise InvalidBlobKeyError(f"invalid blob key segment {segment[:40]!r}")
    return key


def case_document_key(case_ref: str, sha256: str) -> str:
    """The content-addressed key of a case's document: ``cases/<ref>/<sha256>``."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise InvalidBlobKeyError("sha256 must be 64 lowercase hex digits")
    return validate_key(f"cases/{case_ref}/{sha256}")


class LocalBlobStore:
    """Blobs as files under ``root``: one file per key, written via temp file + fsync + rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        """The file for ``key``; refuses anything that would land outside ``root``."""
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):  # e.g. a symlinked directory inside root
            raise InvalidBlobKeyError("blob key resolves outside the store")
        return path

    def put(self, key: str, data: bytes) -> None:
        """Atomic: readers see the old content or the whole new content, even across a crash."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(path.parent)
        log.debug("blob stored key=%s size=%d", key, len(data))

    def get(self, key: str) -> bytes:
        """The stored bytes; ``BlobNotFoundError`` when the key has none."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as e:
            raise BlobNotFoundError(key) from e

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Idempotent delete."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename/unlink durable; directories cannot be opened this way on Windows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
