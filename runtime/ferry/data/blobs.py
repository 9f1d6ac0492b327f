"""Blob references, as the data plane names them: the record itself is declared in
``ferry.core.blobs``, below this floor and ``ferry.api``, which both use it."""

from __future__ import annotations

from ferry.core.blobs import BlobRef, Kind

__all__ = ["BlobRef", "Kind"]
