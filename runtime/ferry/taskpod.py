"""The contract between the operator, which builds task pods, and the runtime inside them.

A task pod has three containers sharing the ``/ferry`` volume: the runtime's init container
fetches inputs into ``INPUTS_DIR``, the user's container reads them and writes its outputs into
``OUTPUTS_DIR``, and the runtime's sidecar publishes those outputs once the user's container has
exited, reporting their references in its termination message. The ``PodPlan`` tells both
runtime containers what to do; it travels in the ``FERRY_POD_PLAN`` environment variable.
"""

from __future__ import annotations

import re

import pydantic

from ferry import resource

ROOT = "/ferry"
INPUTS_DIR = f"{ROOT}/inputs"
OUTPUTS_DIR = f"{ROOT}/outputs"
SECRETS_DIR = f"{ROOT}/secrets"
RUNTIME_DIR = f"{ROOT}/runtime"
"""Private to the runtime containers (not mounted into the task's container)."""
PUBLISH_READY = f"{RUNTIME_DIR}/publish-ready"
"""Written by the publishing sidecar once it can no longer miss the kubelet's SIGTERM; its startup
probe checks it, so the task's container cannot start (and finish) before that."""
PLAN_ENV = "FERRY_POD_PLAN"
MAX_VALUE_BYTES = 1024
"""Largest ``value`` output, read from its file and carried in status."""


def input_env_name(name: str) -> str:
    """``raw-data`` → ``FERRY_INPUT_RAW_DATA``: each input's value or local path, for the user's command."""
    return "FERRY_INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class PodPlan(resource.Model):
    workflow: str
    namespace: str
    task: str
    attempt: int
    inputs: dict[str, resource.Output] = {}
    """Inputs to fetch into ``INPUTS_DIR/<name>`` (files, directories, assets; values are env)."""
    outputs: list[resource.TaskOutput] = []
    output_prefix: str = pydantic.Field(min_length=1)
    """Where this attempt publishes: ``<prefix>/<output name>``; unique per attempt."""


class PublishResult(resource.Model):
    """What the sidecar writes to its termination message."""

    outputs: dict[str, resource.Output] = {}
    error: str | None = None
