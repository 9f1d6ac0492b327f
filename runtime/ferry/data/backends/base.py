"""The interface every backend implements: a handful of thread-safe operations on full URIs."""

from __future__ import annotations

import abc
import dataclasses
import pathlib
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Protocol

from ferry.core import integrity

OnBytes = Callable[[int], None]


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    path: str
    """Path relative to the listed prefix (for ``stat``: the object's name)."""
    size: int | None
    """Bytes, when the store says."""
    modified: float | None = None
    """When it was last written (POSIX seconds), when the store says (listings: ``ferry gc``'s ages)."""


class Backend(abc.ABC):
    """Objects addressed by full URIs (``s3://bucket/key``). Implementations are thread-safe:
    one instance, and one client inside it, serves every thread of the process.

    Reads of a missing object raise FileNotFoundError.
    """

    transient_errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    """Errors worth retrying the whole file for (the client's own retries did not help)."""

    @abc.abstractmethod
    def stat(self, uri: str) -> ObjectInfo | None:
        """The object at ``uri``, or None if there is none (a directory prefix is not an object)."""

    @abc.abstractmethod
    def list(self, uri: str) -> Iterator[ObjectInfo]:
        """Every object below the directory ``uri``, recursively, with paths relative to it."""

    @abc.abstractmethod
    def open(self, uri: str) -> BinaryIO:
        """A read stream of the object, fetched as it is read."""

    @abc.abstractmethod
    def upload(self, source: pathlib.Path, uri: str, on_bytes: OnBytes) -> None:
        """Store a local file at ``uri``, streaming it; readers never see a partial object."""

    @abc.abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None:
        """Store small ``data`` (a manifest) at ``uri`` atomically."""

    @abc.abstractmethod
    def delete(self, uris: Sequence[str]) -> None:
        """Remove objects; missing ones are fine."""

    def put_if_absent(self, uri: str, data: bytes) -> bool:
        """Store small ``data`` at ``uri`` only if no object is there, atomically: True if this call
        stored it, False if one was there. Two writers racing for a name learn which one won (a
        drive's claim on a path)."""
        raise NotImplementedError(f"{uri}: this store cannot create an object only if none is there, which a "
                                  f"drive needs to claim a path; use a file://, s3://, gs:// or abfs:// store")

    def download(self, uri: str, sink: Sink) -> None:
        """Write the object's bytes to ``sink`` in order, never holding all of a large one in memory."""
        with self.open(uri) as source:
            while chunk := source.read(integrity.CHUNK):
                sink.write(chunk)

    def read_bytes(self, uri: str) -> bytes:
        with self.open(uri) as source:
            return source.read()
