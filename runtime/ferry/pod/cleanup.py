"""``ferry pod cleanup``: the pod the operator runs for a deleted workflow with
``artifactCleanup: OnDeletion``, around ``ferry.data.collect`` (the same deletion ``ferry gc`` does)."""

from __future__ import annotations

import json
import os

from ferry.api import taskpod
from ferry.data import cleanup, collect, store as store_


def run() -> int:
    """Empty the workflow's folder as its plan (``cleanup.plan``) says; say what was done in the
    termination message, which the operator reports as an Event."""
    if cleanup.PLAN_ENV not in os.environ:
        raise SystemExit(f"{cleanup.PLAN_ENV} is not set: this command runs in the cleanup pod the operator builds")
    plan = json.loads(os.environ[cleanup.PLAN_ENV])
    documents = [plan["kept"], *({"kind": "directory", "uri": uri} for uri in plan["blobs"])]
    try:
        outcome = collect.collect(store_.Store(), plan["root"], [plan["folder"]], documents)
        message, code = f"{outcome} under {plan['folder']}", 0
    except Exception as error:  # noqa: BLE001 - the operator reports it; the objects stay for ferry gc
        message, code = f"cleaning {plan['folder']} failed: {type(error).__name__}: {error}", 1
    print(message)
    taskpod.write_termination_message(message)
    return code
