"""What a sha256 digest looks like, written once: the models' ``pattern``, the CRD's schema and the
checks of plain Python all take it from here. Apart from ``integrity``, which hashes, so that a
blob reference checks its digests without loading OpenSSL."""

from __future__ import annotations

import re

SHA256 = r"^[0-9a-f]{64}$"
"""A hex sha256 (of a file's content, of a stored result)."""
MANIFEST_DIGEST = r"^sha256:[0-9a-f]{64}$"
"""A manifest's digest: ``sha256:`` and the hex sha256 of the stored manifest."""
_SHA256 = re.compile(SHA256)


def is_sha256(value: object) -> bool:
    return type(value) is str and _SHA256.fullmatch(value) is not None
