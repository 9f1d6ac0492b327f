"""Namespaces as tenants: a workflow reads only its own namespace's folder. Pure functions.

Scoped credentials (``ferry.pod.credentials``) let a pod read the URIs its plan names. Those come from
the spec and from what upstream tasks reported (a Python task's code can write its own report),
so both are checked here before any pod could be given access to another namespace's data.
"""

from __future__ import annotations

from ferry.api import resource, scheduler
from ferry.core import uris
from ferry_operator.config import Config


def foreign_uris(spec: resource.WorkflowSpec, namespace: str, config: Config) -> list[str]:
    """One problem per URI of ``spec`` inside another namespace's folder, naming its field."""
    def uri_of(item: resource.InputSource) -> tuple[str, str | None]:
        if item.uri:
            return "uri", item.uri
        # A value that is a URI (a sensor's path): the pod's credentials let it read it.
        return "value", item.value if isinstance(item.value, str) and uris.is_uri(item.value) else None

    named = [("spec.code", spec.code),
             *((f"spec.inputs[{i}].{field}", uri) for i, item in enumerate(spec.inputs)
               for field, uri in [uri_of(item)]),
             *((f"spec.tasks[{i}].inputs[{j}].{field}", uri)
               for i, task in enumerate(spec.tasks) for j, item in enumerate(task.inputs)
               for field, uri in [uri_of(item)]),
             *((f"spec.tasks[{i}].map.over.{field}", uri)  # what a map's split reads
               for i, task in enumerate(spec.tasks) if task.map for field, uri in [uri_of(task.map.over)])]
    return [f"{field}: {uri} is in another namespace's folder; a workflow in {namespace!r} reads only "
            f"{config.namespace_root(namespace)}/ and data outside Ferry's folder"
            for field, uri in named if uri and config.foreign_folder(uri, namespace)]


def checked(attempt: scheduler.Attempt, namespace: str, config: Config) -> scheduler.Attempt:
    """``attempt``, or its failure when it reports an output (or a stored result) inside another
    namespace's folder: that reference would go into status and into the plans of the next tasks."""
    named = {**{f"output {name!r}": ref.uri or (ref.result and ref.result.uri) for name, ref in attempt.outputs.items()},
             "the stored result": attempt.result and attempt.result.uri}
    foreign = [f"{what}: {uri} is in another namespace's folder" for what, uri in named.items()
               if uri and config.foreign_folder(uri, namespace)]
    if not (attempt.succeeded and foreign):
        return attempt
    return scheduler.Attempt(True, message=f"the task reported what it may not: {'; '.join(foreign)}",
                             reason=resource.FailureReason.PUBLISH_FAILED)
