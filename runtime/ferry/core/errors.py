"""Errors of the data plane; each message names the object and says what to do."""

from __future__ import annotations


class IntegrityError(ValueError):
    """Downloaded bytes differ from what the manifest or blob reference promised."""

    def __init__(self, name: str, what: str, expected: object, actual: object):
        self.name, self.what, self.expected, self.actual = name, what, expected, actual
        super().__init__(f"{name}: {what} mismatch, expected {expected}, got {actual}; "
                         f"the stored object was changed or corrupted after it was published")


class PathEscapeError(ValueError):
    """A path in a tree, manifest or listing would land outside its directory."""


class IncompleteOutputError(FileNotFoundError):
    """A published output has no manifest: its upload never finished, or it was deleted."""


class StoreUnavailableError(ConnectionError):
    """The store did not answer for longer than the retry budget: an infrastructure failure, not
    the task's."""


class ReadOnlyStoreError(PermissionError):
    """A write was attempted on a read-only source such as ``https://``."""
