"""Hash bytes while they stream, and fail loudly when they are not what was promised."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import BinaryIO

from ferry.core import errors

CHUNK = 1024 * 1024
OnBytes = Callable[[int], None]


def verify(name: str, expected_size: int | None, expected_sha256: str | None, size: int, sha256: str) -> None:
    """Raise IntegrityError naming ``name`` if a known expectation is not met."""
    if expected_size is not None and size != expected_size:
        raise errors.IntegrityError(name, "size", f"{expected_size} bytes", f"{size} bytes")
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise errors.IntegrityError(name, "sha256", expected_sha256, sha256)


def sha256_stream(stream: BinaryIO) -> tuple[int, str]:
    """Size and hex sha256 of what is left in ``stream``, read in chunks."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


class HashingWriter:
    """A write-only, non-seekable sink that hashes and counts what passes through to ``target``.

    Non-seekable on purpose: boto3's managed download then writes parts in order, so the hash is
    computed while streaming instead of in a second pass over the file.
    """

    def __init__(self, target: BinaryIO, on_bytes: OnBytes | None = None):
        self._target, self._on_bytes = target, on_bytes
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._target.write(data)
        self._digest.update(data)
        self.size += len(data)
        if self._on_bytes:
            self._on_bytes(len(data))
        return len(data)

    def seekable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class VerifyingReader(io.RawIOBase):
    """A read stream that checks size and sha256 when it reaches the end, so streaming reads are
    verified too: the last ``read()`` raises IntegrityError instead of returning corrupt data's end."""

    def __init__(self, source: BinaryIO, name: str, size: int | None, sha256: str | None):
        super().__init__()
        self._source, self._name, self._size, self._sha256 = source, name, size, sha256
        self._digest, self._seen, self._checked = hashlib.sha256(), 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        if not data:
            if not self._checked:
                self._checked = True
                verify(self._name, self._size, self._sha256, self._seen, self._digest.hexdigest())
            return 0
        buffer[:len(data)] = data
        self._digest.update(data)
        self._seen += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()
