"""Kopf's per-object state, which Ferry does without.

Kopf keeps two records on each object for its change handlers (``on.create``, ``on.update``,
``on.delete``) and timers: the last-handled state, to tell what changed, and each handler's
progress. Ferry uses only event handlers and an index (``handlers``): a Workflow's status and pods
say everything, and Kopf writing its records onto Workflows cost two writes each, conflicting with
the operator's own. These storages keep nothing; adding a change handler would need real ones.
"""

from __future__ import annotations

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: Kopf would deep-copy every event's body to build one, a spec and
    all (about a tenth of the operator's CPU), for change handlers Ferry does not have."""

    def build(self, *, body, extra_fields=None):
        return {}

    def fetch(self, *, body):
        return None

    def store(self, *, body, patch, essence):
        pass


class NoProgress(kopf.ProgressStorage):
    """No handler progress to keep, for the same reason: nothing is written to Workflows."""

    def fetch(self, *, key, body):
        return None

    def store(self, *, key, record, body, patch):
        pass

    def purge(self, *, key, body, patch):
        pass

    def touch(self, *, body, patch, value):
        pass

    def clear(self, *, essence):
        return essence
