"""The two ends of a map, each a pod of its own (and a process under the local executor).

``ferry pod split`` reads what a map goes over once and stores its item index
(``ferry.data.itemindex``), so that each item's pod reads only its own item; ``ferry pod gather``
reads the result every succeeded item stored (``podruntime.store_item_result``) and stores the
task's gathered outputs: a value output becomes the list of the items' values (``null`` where an
item did not succeed), any other one directory whose manifest references the items' files
without copying them. The item units themselves run through ``podruntime`` (container tasks) and
``runner`` (Python tasks); ``resource.MapStatus`` says how the stages follow each other.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import math
import traceback
import types
from collections.abc import Callable

from ferry.api import items as items_, resource, taskpod
from ferry.core import uris
from ferry.data import blobs, itemindex, manifest, store as store_
from ferry.pod import podruntime
from ferry.values import lists, typed as values

GATHER_THREADS = {"file": 2}
"""Item results read at once, by the store's scheme: from an object store each is one small GET,
bounded by its latency, so many at once; from local disk, reading costs less than a thread switch."""
OBJECT_STORE_THREADS = 64


def split(plan: taskpod.PodPlan, store: store_.Store) -> taskpod.PublishResult:
    """Store the item index under the plan's output prefix; report the item count and a pointer to the index."""
    over = podruntime.dereference(plan.split.over, store)
    where = _describe(plan)
    if over.kind == resource.Kind.VALUE:
        listed = over.value if over.uri is None else _stored_json(over, store, where)
        kind, found, base = "value", itemindex.value_items(listed, where), None
    elif over.kind in (resource.Kind.DIRECTORY, resource.Kind.ASSET):
        part = store.part(over.blob(), keep=lambda path: True)
        kind, found, base = "file", itemindex.file_items(over.uri, part.files), over.uri
    else:
        raise ValueError(f"{where} is a {over.kind.value}: map over a list value, a directory or an asset")
    batch = plan.split.batch_size
    if len(found) > resource.MAX_MAP_ITEMS or math.ceil(len(found) / batch) > resource.MAX_MAP_UNITS:
        raise ValueError(f"{where} has {len(found):,} items: a map runs at most {resource.MAX_MAP_ITEMS:,} items in "
                         f"at most {resource.MAX_MAP_UNITS:,} pods; raise batchSize to "
                         f"{math.ceil(len(found) / resource.MAX_MAP_UNITS)} or more, or split the input")
    stored = itemindex.write(store.backend(plan.output_prefix), plan.output_prefix, kind, found, base, batch)
    return taskpod.PublishResult(outputs={"items": resource.Output(kind=resource.Kind.VALUE, value=stored.items)},
                                 result=resource.StoredResult(uri=stored.uri, sha256=stored.sha256, size=stored.size))


def _describe(plan: taskpod.PodPlan) -> str:
    """The map's ``over`` as a message names it: the output it is, or where it is stored."""
    over = plan.split.over
    if over.result is not None:
        return f"task {plan.task!r}: map.over (output {over.result.output!r} in {over.result.uri})"
    return f"task {plan.task!r}: map.over ({over.uri})" if over.uri else f"task {plan.task!r}: map.over"


def _stored_json(ref: resource.Output, store: store_.Store, where: str):
    """A large value's JSON, checked against its digest."""
    if (ref.size or 0) > taskpod.MAX_STORED_VALUE_BYTES:
        raise ValueError(f"{where} is {ref.size:,} bytes, more than a value may be; map over a directory instead")
    with store.open(ref.blob(blobs.Kind.FILE)) as stream:
        data = stream.read(taskpod.MAX_STORED_VALUE_BYTES + 1)
    if len(data) > taskpod.MAX_STORED_VALUE_BYTES:
        raise ValueError(f"{where} is larger than a value may be ({taskpod.MAX_STORED_VALUE_BYTES >> 20} MiB)")
    return json.loads(data)


def gather(plan: taskpod.PodPlan, store: store_.Store) -> taskpod.PublishResult:
    """Store the gathered outputs and their result at ``<output prefix>/.ferry-result.json``; return a pointer to it."""
    spec = plan.gather
    record = items_.Record.decode(spec.record, spec.units)
    succeeded = [(number, record.attempt(unit)) for unit in record.units(resource.Phase.SUCCEEDED)
                 for number in range(unit * spec.batch_size, min(spec.items, (unit + 1) * spec.batch_size))]
    found: list = [None] * spec.items
    threads = GATHER_THREADS.get(uris.scheme(spec.folder), OBJECT_STORE_THREADS)
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="ferry-gather") as pool:
        each = functools.partial(_each, pool, threads)
        for (number, _), outputs in zip(succeeded, each(lambda item: _item(spec, store, *item), succeeded)):
            found[number] = outputs
        published = {output.name: _gathered(plan, store, each, output, found) for output in spec.outputs}
    data = taskpod.PublishResult(outputs=published).model_dump_json(by_alias=True, exclude_none=True).encode()
    uri = f"{plan.output_prefix}/{taskpod.RESULT_NAME}"
    store.backend(uri).write_bytes(uri, data)
    return taskpod.PublishResult(result=resource.StoredResult(uri=uri, sha256=hashlib.sha256(data).hexdigest(),
                                                              size=len(data)))


def _each(pool: concurrent.futures.Executor, threads: int, function, inputs: list) -> list:
    """``function`` of each input, in order, in a few slices per thread (a future per item costs
    more than reading a small object from a local store)."""
    size = max(1, -(-len(inputs) // (threads * 4)))
    slices = pool.map(lambda start: [function(one) for one in inputs[start:start + size]], range(0, len(inputs), size))
    return [output for part in slices for output in part]


def _item(spec: taskpod.GatherPlan, store: store_.Store, number: int, attempt: int) -> dict[str, resource.Output]:
    """The outputs item ``number`` published in its succeeded ``attempt``, each of the kind declared."""
    uri = f"{taskpod.item_prefix(spec.folder, number, attempt)}/{taskpod.RESULT_NAME}"
    with store.backend(uri).open(uri) as stream:
        data = stream.read(1 << 16)  # not read(MAX_RESULT_BYTES) at once: that allocates it, for every item
        if len(data) == 1 << 16:
            data += stream.read(podruntime.MAX_RESULT_BYTES)
    result = taskpod.PublishResult.model_validate_json(data)
    if result.error is not None:
        raise ValueError(f"item {number}: its unit succeeded but {uri} holds an error: {result.error}")
    outputs = {}
    for output in spec.outputs:
        got = result.outputs.get(output.name)
        if got is None or got.kind != output.kind:
            raise ValueError(f"item {number}: {uri} has no {output.kind.value} output {output.name!r}; "
                             f"run the map again")
        outputs[output.name] = got
    # what an item reported is the task's word: no reading (or listing) another store's objects for it
    manifest.check_objects([types.SimpleNamespace(path=name, object=got.uri) for name, got in outputs.items()
                            if got.uri is not None], spec.folder, store.settings.raw_data_prefix, uri)
    return outputs


def _gathered(plan: taskpod.PodPlan, store: store_.Store, each: Callable,
              output: resource.TaskOutput, found: list) -> resource.Output:
    name, prefix = output.name, plan.output_prefix
    mine = [outputs and outputs[name] for outputs in found]
    if output.kind == resource.Kind.VALUE:
        gathered = each(lambda ref: None if ref is None else _value(ref, store), mine)
        if len(json.dumps(gathered).encode()) > taskpod.MAX_STORED_VALUE_BYTES:
            raise ValueError(f"output {name!r}: the list of the items' values is larger than a value may be "
                             f"({taskpod.MAX_STORED_VALUE_BYTES >> 20} MiB); return a file from each item instead")
        return values.publish_json(gathered, store, f"{prefix}/{name}.json")
    Entry, count = manifest.Entry, len(found)
    files, empty = [], []
    if output.kind == resource.Kind.FILE:
        files = [Entry.model_construct(path=lists.item_name(number, count), size=ref.size, sha256=ref.sha256,
                                       mode=0o644, object=ref.uri)
                 for number, ref in enumerate(mine) if ref is not None]
    else:
        kept = [(number, ref) for number, ref in enumerate(mine) if ref is not None]
        parts = each(lambda item: store.part(item[1].blob(), keep=lambda path: True), kept)
        for (number, ref), part in zip(kept, parts):
            head = lists.item_name(number, count)
            files += [Entry.model_construct(path=f"{head}/{entry.path}", size=entry.size, sha256=entry.sha256,
                                            mode=entry.mode, object=manifest.object_uri(ref.uri, entry))
                      for entry in part.files]
            empty += [f"{head}/{path}" for path in part.empty_directories] or ([] if part.files else [head])
    contents = manifest.Manifest.model_construct(files=files, empty_directories=empty)
    where = f"{prefix}/{name}"
    # checked as a reader of this manifest will check it
    manifest.part(contents.to_bytes(), where, keep=lambda path: True, base=where, root=store.settings.raw_data_prefix)
    return resource.Output.of(store.publish_manifest(contents, where), resource.Kind.DIRECTORY)


def _value(ref: resource.Output, store: store_.Store):
    return ref.value if ref.uri is None else _stored_json(ref, store, f"the stored value {ref.uri}")


def _run(step) -> int:
    podruntime.stop_on_sigterm()
    plan = podruntime.read_plan()
    store = store_.current()
    try:
        result = step(plan, store)
    except BaseException as error:  # the operator fails the stage's attempt with this message
        traceback.print_exc()
        result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
    podruntime.report(result, plan, store)
    return 0 if result.error is None else 1


def run_split() -> int:
    """``ferry pod split``: a map's first pod."""
    return _run(split)


def run_gather() -> int:
    """``ferry pod gather``: a map's last pod."""
    return _run(gather)
