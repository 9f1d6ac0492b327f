"""A local record of the sha256 of files already hashed, so publishing a directory again reads
only the files that changed.

Each file is known by what ``stat`` says of it: size, mtime, ctime, inode and device (as git's
index does). The ctime cannot be set back by a user, so a file written since it was hashed never
matches. A record is trusted only if the file's last change was at least ``RACY_NS`` before it was
hashed: a file changed again within the same timestamp tick as its hashing (on a filesystem with
coarse timestamps) is hashed again rather than trusted ("verified on doubt").

One record per published folder, at ``<cache_dir>/hashes/<sha256 of its real path>.json``,
written whole after each upload (holding only the files that upload saw). It is only a hint:
a missing, stale or unreadable record costs a re-hash, never a wrong upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import secrets

from ferry.data import manifest

VERSION = 1
RACY_NS = 2_000_000_000
"""Margin for filesystems whose timestamps tick once a second or two (FAT, ext3, some NFS)."""


class HashCache:
    """The records of one folder: ``known`` to look up, ``record`` after hashing, ``save`` at the end."""

    def __init__(self, path: pathlib.Path | None, records: dict[str, list]):
        self._path, self._old, self._new = path, records, {}

    @classmethod
    def load(cls, cache_dir: pathlib.Path | None, root: pathlib.Path, read: bool = True) -> HashCache:
        """The records kept for the folder ``root`` (none when ``cache_dir`` is None or nothing is
        kept). ``read=False`` starts afresh without reading them, where none could be used (nothing
        at the destination to compare with): 10,000 records take about 8 MiB."""
        if cache_dir is None:
            return cls(None, {})
        path = cache_dir / "hashes" / f"{hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:32]}.json"
        if not read:
            return cls(path, {})
        try:
            data = json.loads(path.read_bytes())
            records = data["files"] if data.get("version") == VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            records = {}
        return cls(path, records if isinstance(records, dict) else {})

    def known(self, item: manifest.LocalFile) -> str | None:
        """The sha256 of ``item`` if a trusted record matches it exactly."""
        record = self._old.get(str(item.source))
        if (isinstance(record, list) and len(record) == 7 and tuple(record[:5]) == item.key
                and isinstance(record[6], int) and item.key[2] + RACY_NS <= record[6]):
            self._new[str(item.source)] = record
            return record[5]
        return None

    def record(self, item: manifest.LocalFile, sha256: str, hashed_at_ns: int) -> None:
        """``item`` (as listed before it was read at ``hashed_at_ns``) holds bytes with ``sha256``."""
        self._new[str(item.source)] = [*item.key, sha256, hashed_at_ns]

    def save(self) -> None:
        """Write the records of this upload; a failure only loses the hint."""
        if self._path is None:
            return
        temporary = self._path.with_name(f".{self._path.name}.{secrets.token_hex(4)}")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"version": VERSION, "files": self._new}, separators=(",", ":")))
            os.replace(temporary, self._path)
        except OSError:
            temporary.unlink(missing_ok=True)
