"""Backend wrappers that count or break calls, for tests of the transfer engine."""

from __future__ import annotations

import pathlib
import threading

from ferry.data.backends import base


class Spy(base.Backend):
    """Delegates to ``inner``; records uploads, and fails the ``fail_at``-th one with ``error``."""

    def __init__(self, inner: base.Backend, fail_at: int | None = None, error: Exception | None = None):
        self.inner, self.fail_at, self.error = inner, fail_at, error
        self.transient_errors = inner.transient_errors
        self.uploads: list[str] = []
        self._lock = threading.Lock()

    def upload(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> None:
        with self._lock:
            self.uploads.append(uri)
            failing = self.fail_at is not None and len(self.uploads) == self.fail_at
        if failing:
            raise self.error
        self.inner.upload(source, uri, on_bytes)

    def stat(self, uri):
        return self.inner.stat(uri)

    def list(self, uri):
        return self.inner.list(uri)

    def open(self, uri):
        return self.inner.open(uri)

    def download(self, uri, sink):
        return self.inner.download(uri, sink)

    def write_bytes(self, uri, data):
        return self.inner.write_bytes(uri, data)

    def delete(self, uris):
        return self.inner.delete(uris)


def spy_on(store, **kwargs) -> Spy:
    """Put a Spy in front of the backend that serves the store's raw data prefix."""
    from ferry.core import uris
    scheme = uris.scheme(store.raw_data_prefix)
    spy = Spy(store.backend(store.raw_data_prefix), **kwargs)
    store._backends[scheme] = spy
    return spy
