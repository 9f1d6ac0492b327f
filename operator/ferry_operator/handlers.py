"""Kopf handlers: thin triggers around ``scheduler.step``.

Any change that matters (a workflow created or seen at start, one of its pods changing, a
deadline: a back-off ending, a timeout, a finished workflow's TTL) asks for the workflow to be
reconciled. Requests for the same workflow are serialized and coalesced: while one reconciliation
runs, any number of new requests result in exactly one more. Deadlines are armed from each
reconciliation's result (``scheduler.next_deadline``, ``results.deadline``, ``retention.due``); a
slow resync is only the safety net.

A reconciliation reads nothing from the API server in the common case: the workflow's pods come
from an index fed by the operator's label-selected pod watch (Kopf fills it before any handler
runs), its body from the watch or from the answer to the last status write (``bodies``). It
writes what changed: pods to create or stop, a JSON patch of the status, held pods to release (and
delete, as ``podRetention`` says), a finished workflow past its TTL to delete.

Only event handlers: Kopf's change handlers (``on.create``, ``on.delete``, timers) record their
progress in each Workflow's annotations and add Kopf's finalizer, writes that also conflict with
the first status write. Ferry's own finalizer (``WORKFLOW_FINALIZER``) does what ``on.delete`` did.

All the operator keeps between events is one ``State``, made at its start and kept in Kopf's
``memo``; every step below takes it as its first argument.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import datetime
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import kopf
import pydantic

from ferry.api import resource, scheduler
from ferry.data import cleanup
from ferry_operator import bodies, kopfstate, kube, metrics, patches, pods, results, retention, tenancy
from ferry_operator.config import Config

WORKFLOWS = dict(group=resource.GROUP, version=resource.VERSION, plural=resource.PLURAL)
WORKFLOW_FINALIZER = "ferry.dev/stop-tasks"
"""Held on every Workflow until its pods are stopped within ``pods.STOP_GRACE_SECONDS``: the
garbage collector would give each pod its whole upload grace, and a running kill is never
shortened (a task whose PID 1 ignores SIGTERM would run to its end)."""
RESYNC_SECONDS = 30.0
"""The safety net: every running workflow is reconciled this often, though every change that
matters has an event or an armed deadline."""
RETRY_SECONDS = 10.0
"""A workflow's deletion that failed (the API refused to stop a pod) is tried again after this."""
BUSY_RETRY_SECONDS = 2.0
"""A reconciliation the API server was too busy for (``kube.Busy``) is tried again after this."""
MOUNT_CHECK_SECONDS = 10.0
"""How long the ``FailedMount`` messages last read from a namespace's events serve its pods stuck
starting."""
RELEASE_SETTLE_SECONDS = 10.0
"""How long a released pod's events have to show it let go before it is released again
(``State.releasing``)."""
DEADLINE_MARGIN_SECONDS = 0.5
"""Woken this long after a deadline: status times have whole seconds, and deadlines are strict."""
MIN_WRITE_INTERVAL = 1.0
"""Seconds between two status writes of a workflow while one of its maps runs (``_coalesced``):
a map of 100,000 items ends a hundred pods a second, and a write per pod event would cost the API
server one write of the whole status per item."""
QUOTA_RETRY_SECONDS = 5.0
"""A workflow whose pod a full ResourceQuota refused is reconciled again after this, if no pod
event comes first (another workflow's pods ending free the room without telling this one)."""

Key = tuple[str, str]


@dataclasses.dataclass
class State:
    """What the operator holds between events: made once at its start (``configure``), kept in
    Kopf's ``memo`` (``memo.state``) and passed to every step, so that no module holds any of it
    and a test makes its own."""

    config: Config
    api: kube.Client
    task_pods: Mapping[Key, Iterable[dict]]
    """Kopf's index of each workflow's pods (``task_pods``)."""
    bodies: bodies.Bodies = dataclasses.field(default_factory=bodies.Bodies)
    tally: metrics.Tally = dataclasses.field(default_factory=metrics.Tally)
    locks: dict[Key, asyncio.Lock] = dataclasses.field(default_factory=lambda: collections.defaultdict(asyncio.Lock))
    queued: set[Key] = dataclasses.field(default_factory=set)
    refusals: dict[Key, str] = dataclasses.field(default_factory=dict)
    wakeups: dict[Key, asyncio.TimerHandle] = dataclasses.field(default_factory=dict)
    background: set[asyncio.Task] = dataclasses.field(default_factory=set)
    gone: set[Key] = dataclasses.field(default_factory=set)
    """Workflows whose deletion is done: their lock goes once the reconciliation holding it ends."""
    deleting: dict[Key, dict] = dataclasses.field(default_factory=dict)
    """Workflows being deleted, as their latest event showed them: every event of their pods
    reconciles them, and reading each afresh would be a GET per pod event (a thousand for a
    1,000-pod workflow)."""
    mount_checks: dict[str, tuple[float, asyncio.Future]] = dataclasses.field(default_factory=dict)
    """Namespace → when its ``FailedMount`` events were last read, and the reading (by pod uid)."""
    unseen: set[Key] = dataclasses.field(default_factory=set)
    """Pods (namespace, name) the operator created or released whose event has not reached the
    index yet: not created again, nor released twice, meanwhile."""
    releasing: dict[Key, float] = dataclasses.field(default_factory=dict)
    """Pods the operator released (and deleted), with when, until an event shows them without
    ``pods.RESULT_FINALIZER``: a release that deletes first makes two events, and the first (the
    deletion) must not let a reconciliation release the pod again (a map's thousands of pods each
    cost a second DELETE and PATCH that way). After ``RELEASE_SETTLE_SECONDS`` a pod is released
    again all the same: a release the API server refused as stale (422) leaves the finalizer on."""
    written: dict[Key, float] = dataclasses.field(default_factory=dict)
    """When (``clock``) each workflow's status was last written: ``MIN_WRITE_INTERVAL`` apart while a map runs."""
    quota_waits: dict[Key, str] = dataclasses.field(default_factory=dict)
    """Workflows whose next pod a full ResourceQuota refused (the refusal), told once until one is created."""
    clock: Callable[[], float] = time.monotonic


@kopf.index("", "v1", "pods", labels={pods.LABEL_WORKFLOW: kopf.PRESENT})
def task_pods(namespace: str, body: kopf.Body, **_) -> dict:
    """Each workflow's pods that a reconciliation may still read, by (namespace, owner's name)."""
    owner, kept = pods.owner_name(body), pods.summary(body)
    return {(namespace, owner): kept} if owner and kept else {}


def _pods_of(state: State, namespace: str, name: str) -> list[dict]:
    """The pods of workflows named ``name`` (a same-named older one's too; ``pods.owned`` tells)."""
    return list(state.task_pods[namespace, name]) if (namespace, name) in state.task_pods else []


def _spawn(state: State, coroutine) -> None:
    """Run ``coroutine`` in the background, held until it ends (asyncio keeps only weak ones); an
    error it raises is logged."""
    task = asyncio.ensure_future(coroutine)
    state.background.add(task)
    task.add_done_callback(functools.partial(_ended, state))


def _ended(state: State, task: asyncio.Task) -> None:
    state.background.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logging.getLogger("ferry.operator").error("background work failed", exc_info=error)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, logger: logging.Logger, memo: kopf.Memo,
                    task_pods: kopf.Index, **_) -> None:
    memo.state = state = State(Config.from_env(), kube.login(), task_pods)
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(kube.CALLS_IN_FLIGHT, thread_name_prefix="ferry-api"))
    # Watching exact namespaces needs no cluster-wide discovery (which a namespaced install may
    # not be allowed to do: Kopf would retry it for a minute before starting).
    settings.scanning.disabled = bool(memo.get("exact_namespaces"))
    # Only Ferry's pods reach the operator: filtered by the API server, not after the download.
    settings.watching.label_selectors["", "v1", "pods"] = pods.LABEL_WORKFLOW
    settings.persistence.diffbase_storage = kopfstate.NoDiffBase()
    settings.persistence.progress_storage = kopfstate.NoProgress()
    settings.posting.level = logging.INFO
    _spawn(state, _resync(state))
    logger.info("raw data prefix %s, runtime image %s", state.config.raw_data_prefix, state.config.runtime_image)


async def _resync(state: State) -> None:
    """Reconcile every running workflow, and every finished one with pods still held or past its
    TTL (its deletion refused, say), once per ``RESYNC_SECONDS``, spread over the period."""
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        running = state.bodies.known() + [key for key in state.bodies.finished_keys()
                                          if key in state.task_pods or (_due(state, *key) or now) < now]
        for namespace, name in running:
            _spawn(state, request(state, namespace, name))
            await asyncio.sleep(RESYNC_SECONDS / len(running))
        if not running:
            await asyncio.sleep(RESYNC_SECONDS)


@kopf.on.event(**WORKFLOWS)
async def workflow_changed(type: str | None, body: kopf.Body, namespace: str, name: str, memo: kopf.Memo,
                           **_) -> None:
    """A workflow created, listed at the operator's start (``type`` None), changed or deleted. An
    event that only echoes the operator's own status write (``bodies.offer``) asks for nothing."""
    state: State = memo.state
    if type == "DELETED":
        state.bodies.forget(namespace, name)
        state.deleting.pop((namespace, name), None)
    elif body["metadata"].get("deletionTimestamp"):
        state.bodies.forget(namespace, name)
        if WORKFLOW_FINALIZER in (body["metadata"].get("finalizers") or []):
            state.deleting[(namespace, name)] = {**body}
            _spawn(state, request(state, namespace, name))
        else:
            state.deleting.pop((namespace, name), None)
    elif bodies.settled(body):
        offered = state.bodies.offer({**body})
        # Pods still held (the operator stopped, or the API was busy, between the last status write
        # and their release), or a TTL to arm (seen at the operator's start) or to act on.
        if (namespace, name) in state.task_pods or (offered and _due(state, namespace, name) is not None):
            _spawn(state, request(state, namespace, name))
    elif state.bodies.offer({**body}):  # Kopf gives each event a body of its own: a shallow copy is enough
        _spawn(state, request(state, namespace, name))


async def _let_go(state: State, namespace: str, name: str, body: dict) -> None:
    """Stop a deleted workflow's pods, release them, delete its objects (``artifactCleanup``), and
    remove ``WORKFLOW_FINALIZER``; tried again after ``RETRY_SECONDS`` if the API refuses any of it.
    Each step is recorded in the cluster (the pods, the cleanup pod), so a restarted operator
    takes it up where it stood."""
    meta = body["metadata"]
    try:
        owned = pods.owned(_pods_of(state, namespace, name), meta["uid"])
        cleaner = owned.pop(pods.cleanup_pod_name(name), None)
        await _stop(state, namespace,
                    [pod_name for pod_name, pod in owned.items() if not pod["metadata"].get("deletionTimestamp")])
        await _release(state, namespace, list(owned.values()))
        if (body.get("spec") or {}).get("artifactCleanup") == resource.ArtifactCleanup.ON_DELETION.value:
            if not await _cleaned(state, namespace, name, body, owned, cleaner):
                return  # the pods' events bring it back
            await _release(state, namespace, [cleaner] if cleaner else [])
        for _ in range(3):  # the finalizers changed meanwhile: read them again
            ops = patches.finalizer_removed(meta, WORKFLOW_FINALIZER)
            if not ops or await asyncio.to_thread(state.api.patch_workflow, namespace, name, ops):
                break
            meta = ((await asyncio.to_thread(state.api.get_workflow, namespace, name)) or {"metadata": {}})["metadata"]
    except (kube.Refused, kube.Busy) as refused:
        logging.getLogger("ferry.operator").error("deleting workflow %s/%s: %s", namespace, name, refused)
        asyncio.get_running_loop().call_later(RETRY_SECONDS, lambda: _spawn(state, request(state, namespace, name)))
        return
    key = (namespace, name)
    state.tally.forget(key)
    state.refusals.pop(key, None)
    state.written.pop(key, None)
    state.quota_waits.pop(key, None)
    state.deleting.pop(key, None)
    state.gone.add(key)
    if (handle := state.wakeups.pop(key, None)) is not None:
        handle.cancel()


async def _cleaned(state: State, namespace: str, name: str, body: dict, task_pods: dict[str, dict],
                   cleaner: dict | None) -> bool:
    """Whether the deleted workflow's objects are dealt with: its cleanup pod ended (reported as
    an Event), or cannot be given its plan. The pod starts once no task pod runs any more: a
    stopping one could still be uploading into the folder it empties (past its grace, it cannot)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if cleaner is None:
        ends = [results.deadline(pod, state.config.start_timeout_seconds) for pod in task_pods.values()
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        if any(end is None or end > now for end in ends):
            _wake_at(state, namespace, name, max(filter(None, ends), default=None))
            return False
        others = await asyncio.to_thread(state.api.list_workflows, namespace)
        # Off the event loop: it walks every Workflow of the namespace.
        plan = await asyncio.to_thread(cleanup.plan, state.config.namespace_root(namespace), body["metadata"]["uid"],
                                       others)
        if len(json.dumps(plan)) > cleanup.PLAN_LIMIT:
            kopf.event(body, type="Warning", reason="ArtifactCleanupSkipped",
                       message=f"too many references from other workflows for a cleanup pod; the objects under "
                               f"{plan['folder']} stay: ferry gc removes what nothing references")
            return True
        pod = pods.build_cleanup_pod(body, plan, state.config)
        await _unseen_until_done(state, namespace, pod["metadata"]["name"], state.api.create_pod, pod)
        return False
    outcome = results.cleanup_outcome(cleaner, now, state.config.start_timeout_seconds)
    if outcome is None:  # woken by its events, or at its start timeout if it is stuck
        _wake_at(state, namespace, name, results.deadline(cleaner, state.config.start_timeout_seconds))
        return False
    kind, reason, message = outcome
    kopf.event(body, type=kind, reason=reason, message=message)
    await _stop(state, namespace, [cleaner["metadata"]["name"]] if kind == "Warning" else [])  # one stuck starting
    return True


@kopf.on.event("", "v1", "pods", labels={pods.LABEL_WORKFLOW: kopf.PRESENT})
async def pod_changed(namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, type: str | None = None,
                      **_) -> None:
    state: State = memo.state
    state.unseen.discard((namespace, name))  # the index holds this event's state now
    if type == "DELETED" or pods.RESULT_FINALIZER not in (body["metadata"].get("finalizers") or []):
        state.releasing.pop((namespace, name), None)
    if owner := pods.owner_name(body):
        _spawn(state, request(state, namespace, owner))


async def request(state: State, namespace: str, name: str) -> None:
    """Reconcile the workflow, once per change: one that has not started yet covers this one.

    Event handlers spawn it rather than wait for it: Kopf handles one object's events in order, so
    a handler waiting for a reconciliation (itself waiting for another one's status write) would
    hold back that pod's next event, and with it the index, by one round trip or more."""
    key = (namespace, name)
    if key in state.queued:  # a reconciliation that has not started yet will see this change too
        return
    state.queued.add(key)
    async with state.locks[key]:
        state.queued.discard(key)
        try:
            await reconcile_workflow(state, namespace, name)
        except kube.Busy as busy:
            logging.getLogger("ferry.operator").info("workflow %s/%s: %s; trying again", namespace, name, busy)
            _wake_at(state, namespace, name, datetime.datetime.now(datetime.timezone.utc)
                     + datetime.timedelta(seconds=BUSY_RETRY_SECONDS - DEADLINE_MARGIN_SECONDS))
        except kube.Refused as refused:
            await _report_refusal(state, namespace, name, refused)
        else:
            state.refusals.pop(key, None)
    if key in state.gone and key not in state.queued:  # deleted: nothing will wait on its lock again
        state.gone.discard(key)
        state.locks.pop(key, None)


async def _report_refusal(state: State, namespace: str, name: str, refused: kube.Refused) -> None:
    """Say it where users look (the Workflow's status and events) and in the log, once per cause;
    the next trigger tries again, so fixing the permission is enough to resume."""
    message = str(refused)
    if state.refusals.get((namespace, name)) == message:
        return
    state.refusals[(namespace, name)] = message
    logging.getLogger("ferry.operator").error("workflow %s/%s: %s", namespace, name, message)
    kopf.event(_reference(namespace, name), type="Warning", reason="APIRefused", message=message)
    if state.bodies.finished(namespace, name):
        return  # its message says why it failed: the event and the log tell this
    try:
        await asyncio.to_thread(state.api.merge_status, namespace, name, {"message": message})
    except (kube.Refused, kube.Busy):
        pass  # the event and the log still say it


async def reconcile_workflow(state: State, namespace: str, name: str) -> None:
    """Bring the workflow one step on (``scheduler.step``), from what is known of it and its pods;
    read again and retried only when someone else wrote its status meanwhile."""
    if finished := state.bodies.finished(namespace, name):
        await _tend_finished(state, namespace, name, finished)
        return
    for retry in range(5):
        body = await _body(state, namespace, name, fresh=bool(retry))
        if body is None:
            return
        finalizers = body["metadata"].get("finalizers") or []
        if body["metadata"].get("deletionTimestamp"):
            if WORKFLOW_FINALIZER in finalizers:
                await _let_go(state, namespace, name, body)
            return
        if WORKFLOW_FINALIZER not in finalizers and (body := await _hold(state, namespace, name, body)) is None:
            continue
        status = resource.WorkflowStatus.model_validate(body.get("status") or {})
        if bodies.settled(body):
            state.tally.observe((namespace, name), None, status, status)
            _expire_when_due(state, namespace, name)
            return
        spec, step = _spec_or_failure(state, namespace, body, status)
        owned: dict[str, dict] = {}
        if spec is not None:
            step, owned = await _run_step(state, namespace, name, body, spec, status)
            if _coalesced(state, namespace, name, status, step):
                return
        if not await _write_status(state, namespace, name, body, spec, status, step):
            continue
        if spec is not None:
            _follow_up(state, namespace, name, spec, step, owned)
        return


def _coalesced(state: State, namespace: str, name: str, before: resource.WorkflowStatus,
               step: scheduler.Step) -> bool:
    """Whether the step's status is left unwritten for now, and written by a reconciliation at
    most ``MIN_WRITE_INTERVAL`` after the last write (woken then, if no pod event comes first).

    Only while a map runs, before and after the step, and only for a step that stops no pod and
    ends no task (what others wait for is written at once). Its pods are created all the same:
    creations never wait for a write. This is safe because the status is the only record, and
    every step starts again from the status as last written: the next step sees the same attempts
    recorded, makes the same decisions about them, and gives any attempt it starts again the same
    number, so the same pod name (``scheduler.unit_name``, ``pod_name``): the pod already made is
    found in the index (or in ``unseen``), never created twice, and observed as that attempt's. An
    operator restarted meanwhile does the same from the written status, the API server refusing a
    second pod of a name (409). Nothing is released or deleted on the strength of an unwritten
    status: pods are let go only after the write that records their end (``_follow_up``)."""
    key = (namespace, name)
    since = state.clock() - state.written.get(key, -MIN_WRITE_INTERVAL)
    after = step.status
    if since >= MIN_WRITE_INTERVAL or step.delete or before.phase != after.phase \
            or not (_map_running(before) and _map_running(after)) \
            or any(ts.phase != (before.tasks.get(task) or ts).phase for task, ts in after.tasks.items()):
        return False
    _wake_at(state, namespace, name, datetime.datetime.now(datetime.timezone.utc)
             + datetime.timedelta(seconds=MIN_WRITE_INTERVAL - since - DEADLINE_MARGIN_SECONDS))
    return True


def _map_running(status: resource.WorkflowStatus) -> bool:
    return any(ts.map is not None and ts.phase == resource.Phase.RUNNING for ts in status.tasks.values())


async def _tend_finished(state: State, namespace: str, name: str, finished: bodies.Finished) -> None:
    """A finished workflow: deleted once past its TTL, else woken then; its held pods, if releasing
    them failed after its last status write, are let go (or deleted, as ``podRetention`` says)."""
    due = _due(state, namespace, name)
    if due is not None and due <= datetime.datetime.now(datetime.timezone.utc):
        # Ferry's finalizer still runs (``_let_go``); the pods go by their owner references.
        await asyncio.to_thread(state.api.delete_workflow, namespace, name, finished.uid)
        return
    _wake_at(state, namespace, name, due)
    owned = pods.owned(_pods_of(state, namespace, name), finished.uid)
    await _release(state, namespace, [pod for pod_name, pod in owned.items() if pod_name not in finished.running],
                   lambda pod: retention.deletes(finished.pod_retention, pod, finished.succeeded))


async def _body(state: State, namespace: str, name: str, fresh: bool) -> dict | None:
    """The workflow as last seen (``bodies``, or its deletion's event), or read (``fresh``, or not
    known); None when it is gone."""
    body = None if fresh else (state.bodies.get(namespace, name) or state.deleting.get((namespace, name)))
    if body is None:
        body = await asyncio.to_thread(state.api.get_workflow, namespace, name)
        # A deleted one is in ``deleting`` by its event.
        if body is not None and not body["metadata"].get("deletionTimestamp"):
            state.bodies.offer(body)
    return body


async def _hold(state: State, namespace: str, name: str, body: dict) -> dict | None:
    """Add ``WORKFLOW_FINALIZER``, before the workflow's first pod; None when it was written meanwhile."""
    meta = body["metadata"]
    written = await asyncio.to_thread(state.api.patch_workflow, namespace, name,
                                      patches.finalizer_added(meta, WORKFLOW_FINALIZER), meta["resourceVersion"])
    if written is not None:
        state.bodies.offer(written)
    return written


def _spec_or_failure(state: State, namespace: str, body: dict, status: resource.WorkflowStatus
                     ) -> tuple[resource.WorkflowSpec, None] | tuple[None, scheduler.Step]:
    """The workflow's spec, or the step that fails it: one the models reject, or naming another
    namespace's data."""
    try:
        spec = state.bodies.spec(body)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return None, _invalid(status, problems)
    if foreign := tenancy.foreign_uris(spec, namespace, state.config):
        return None, _invalid(status, "; ".join(foreign))
    return spec, None


async def _run_step(state: State, namespace: str, name: str, body: dict, spec: resource.WorkflowSpec,
                    status: resource.WorkflowStatus) -> tuple[scheduler.Step, dict[str, dict]]:
    """The scheduler's step, from the workflow's pods as the index holds them; the pods it starts
    are created and those it stops deleted. With the workflow's own pods, by name."""
    listed = _pods_of(state, namespace, name)
    owned = pods.owned(listed, body["metadata"]["uid"])
    now = datetime.datetime.now(datetime.timezone.utc)
    stuck = {pod_name: await _mount_failures(state, namespace, pod["metadata"]["uid"])
             for pod_name, pod in owned.items() if results.stuck_starting(pod, now, state.config.start_timeout_seconds)}
    unborn: list[str] = []
    unborn_units: list[scheduler.Unit] = []
    observe = _observer(state, namespace, name, owned, {p["metadata"]["name"] for p in listed} - set(owned), stuck,
                        now, unborn, unborn_units)
    # A map's units run at most the operator's parallelism at once, unless the map says.
    step = scheduler.step(name, spec, status, observe, now, default_parallelism=state.config.map_parallelism)
    step.create += [(task, step.status.tasks[task].attempts) for task in unborn
                    if step.status.tasks[task].phase == resource.Phase.RUNNING]
    records: dict = {}
    units = [*step.units, *(u for u in unborn_units
                            if pods.unit_running(step.status, u.task, u.role, u.attempt, u.index, records))]
    await _create(state, namespace, name, owned, (
        *(functools.partial(pods.build_pod, body, spec, step.status, task, attempt, state.config)
          for task, attempt in step.create),
        *(functools.partial(pods.build_unit_pod, body, spec, step.status, unit, state.config) for unit in units)))
    await _stop(state, namespace, [*step.delete, *pods.strays(owned, step.status)])
    return step, owned


async def _create(state: State, namespace: str, name: str, owned: dict[str, dict],
                  builders: Iterable[Callable[[], dict]]) -> None:
    """Create the pods ``builders`` make, but those that exist or were created already (a retry
    after a conflict, a step whose status was not written). A full ResourceQuota is a wait, not a
    failure: the rest are left for a later reconciliation (their attempts are running in status
    with no pod, which the observer finds ``unborn``), told once, tried again after
    ``QUOTA_RETRY_SECONDS`` or at the next pod event."""
    key = (namespace, name)
    for build in builders:
        pod = build()
        pod_name = pod["metadata"]["name"]
        if pod_name in owned or (namespace, pod_name) in state.unseen:
            continue
        try:
            await _unseen_until_done(state, namespace, pod_name, state.api.create_pod, pod)
        except kube.Refused as refused:
            if not refused.quota:
                raise
            if key not in state.quota_waits:
                logging.getLogger("ferry.operator").info("workflow %s/%s: %s; waiting", namespace, name, refused)
                kopf.event(_reference(namespace, name), type="Warning", reason="WaitingForQuota",
                           message=f"waiting for room in the namespace's ResourceQuota: {refused}")
            state.quota_waits[key] = str(refused)
            _wake_at(state, namespace, name, datetime.datetime.now(datetime.timezone.utc)
                     + datetime.timedelta(seconds=QUOTA_RETRY_SECONDS - DEADLINE_MARGIN_SECONDS))
            return
        state.quota_waits.pop(key, None)


def _reference(namespace: str, name: str) -> dict:
    """Enough of a Workflow to post an Event on it."""
    return {"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": {"name": name, "namespace": namespace}}


def _observer(state: State, namespace: str, name: str, owned: dict[str, dict], foreign: set[str],
              stuck: dict[str, list[str]], now: datetime.datetime, unborn: list[str],
              unborn_units: list[scheduler.Unit]) -> Callable[[resource.Task, str], scheduler.Attempt]:
    """How the scheduler sees a task's attempt (or a map unit's), from its pod (``stuck``
    starting: the pods' mount failures); a task whose pod was never created is added to
    ``unborn``, a map's unit to ``unborn_units`` (a full ResourceQuota refused it, say)."""

    def observe(task: resource.Task, pod_name: str) -> scheduler.Attempt:
        pod = owned.get(pod_name)
        if pod:
            role = None
            if task.map:
                unit = pods.unit_of(name, task.name, pod_name)
                role = (pod["metadata"].get("labels") or {}).get(pods.LABEL_ROLE) or (unit and unit.role)
            attempt = results.read_attempt(pod, [o.name for o in task.outputs], now,
                                           state.config.start_timeout_seconds, stuck.get(pod_name, []), role=role)
            return tenancy.checked(attempt, namespace, state.config)
        if pod_name in foreign:  # a same-named earlier workflow's, still stopping
            return scheduler.Attempt(False, message=f"waiting for pod {pod_name} of an earlier workflow "
                                                    f"named {name} to go")
        # Never created (refused while the earlier one's pod was there): create it now. A pod of
        # ours cannot vanish unseen: Ferry's finalizer holds it until its end is recorded.
        if (namespace, pod_name) not in state.unseen:
            if not task.map:
                unborn.append(task.name)
            elif unit := pods.unit_of(name, task.name, pod_name):
                unborn_units.append(unit)
        return scheduler.Attempt(False)

    return observe


async def _write_status(state: State, namespace: str, name: str, body: dict, spec: resource.WorkflowSpec | None,
                        status: resource.WorkflowStatus, step: scheduler.Step) -> bool:
    """Write what the step changed in the status, and post its events; False when someone else
    wrote the status first."""
    step.status.observed_generation = body["metadata"].get("generation")
    if step.status == status:
        return True
    after = step.status.dump()
    patch = (patches.diff(body["status"], after, "/status") if isinstance(body.get("status"), dict)
             else [{"op": "add", "path": "/status", "value": after}])
    written = await asyncio.to_thread(state.api.patch_status, namespace, name, patch,
                                      body["metadata"]["resourceVersion"])
    if written is None:
        return False
    state.written[(namespace, name)] = state.clock()
    state.bodies.offer(written)
    state.tally.observe((namespace, name), spec, status, step.status)
    for kind, reason, message in step.events:
        if state.config.posts(kind, reason):
            kopf.event(written, type=kind, reason=reason, message=message)
    if step.status.phase in scheduler.DONE:
        state.written.pop((namespace, name), None)
        _expire_when_due(state, namespace, name)
    return True


def _follow_up(state: State, namespace: str, name: str, spec: resource.WorkflowSpec, step: scheduler.Step,
               owned: dict[str, dict]) -> None:
    """Once the status holds what they told: let go of the pods it no longer needs, in the
    background (the next reconciliation need not wait), and arm the next deadline."""
    succeeded = retention.succeeded_pods(step.status) | pods.succeeded_units(owned, step.status)
    running = pods.needed(owned, step.status)
    _spawn(state, _release_later(state, namespace, pods.releasable(owned, step.status, running),
                                 lambda pod: retention.deletes(spec.pod_retention, pod, succeeded)))
    _wake_at(state, namespace, name, min(filter(None, [
        scheduler.next_deadline(spec, step.status, step.deadline),
        *(results.deadline(pod, state.config.start_timeout_seconds) for pod_name, pod in owned.items()
          if pod_name in running)]), default=None))


def _due(state: State, namespace: str, name: str) -> datetime.datetime | None:
    """When the workflow, known finished, is deleted (None: never, or not known finished)."""
    finished = state.bodies.finished(namespace, name)
    return finished and retention.due(finished.finished_at,
                                      retention.ttl(finished.ttl, state.config.ttl_seconds_after_finished))


def _expire_when_due(state: State, namespace: str, name: str) -> None:
    """Have a finished workflow reconciled when its TTL has passed (at once if it has already: a
    TTL of 0): that reconciliation deletes it."""
    due = _due(state, namespace, name)
    if due is not None and due <= datetime.datetime.now(datetime.timezone.utc):
        _spawn(state, request(state, namespace, name))
    else:
        _wake_at(state, namespace, name, due)


async def _mount_failures(state: State, namespace: str, uid: str) -> list[str]:
    """The pod's ``FailedMount`` messages, from a reading of its namespace's events at most
    ``MOUNT_CHECK_SECONDS`` old, shared by every reconciliation there: a LIST of events is one of
    the API server's dearest calls, and on a busy cluster many pods may wait to start at once (one
    LIST per pod fed back on itself: the slower the API server, the more pods waited, the more
    LISTs)."""
    now, checked = time.monotonic(), state.mount_checks.get(namespace)
    if checked is None or now - checked[0] > MOUNT_CHECK_SECONDS:
        checked = state.mount_checks[namespace] = (now, asyncio.ensure_future(
            asyncio.to_thread(state.api.mount_failures, namespace)))
    try:
        return (await asyncio.shield(checked[1])).get(uid, [])
    except (kube.Refused, kube.Busy):
        if state.mount_checks.get(namespace) is checked:  # the next reconciliation reads them again
            del state.mount_checks[namespace]
        raise


def _wake_at(state, namespace: str, name: str, moment: datetime.datetime | None) -> None:
    """Reconcile the workflow just after ``moment``, unless a wake-up no later is already armed. A
    moment already past was seen by the reconciliation that computed it: nothing to arm (a pod
    waiting for room past its start timeout would otherwise wake it in a loop)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if moment is None or moment <= now:
        return
    key, loop = (namespace, name), asyncio.get_running_loop()
    delay = (moment - now).total_seconds() + DEADLINE_MARGIN_SECONDS
    armed = state.wakeups.get(key)
    if armed is not None and not armed.cancelled() and armed.when() <= loop.time() + delay:
        return
    if armed is not None:
        armed.cancel()

    def wake() -> None:
        state.wakeups.pop(key, None)
        _spawn(state, request(state, namespace, name))

    state.wakeups[key] = loop.call_later(delay, wake)


async def _release(state: State, namespace: str, held: list[dict],
                   deleting: Callable[[dict], bool] | None = None) -> None:
    """Let pods go whose attempts the status has recorded (``pods.RESULT_FINALIZER``); those
    ``deleting`` names (``retention.deletes``) are deleted first: released first, a pod leaves the
    index, and one the operator stopped before deleting would stay until its workflow goes."""
    # The index's state now, not the reconciliation's snapshot: a release's event may have come meanwhile.
    owners = {pods.owner_name(pod) or "" for pod in held}
    current = {p["metadata"].get("uid"): p for owner in owners for p in _pods_of(state, namespace, owner)}
    for pod in held:
        name, now = pod["metadata"]["name"], current.get(pod["metadata"].get("uid"))
        key = (namespace, name)
        settling = time.monotonic() - state.releasing.get(key, -RELEASE_SETTLE_SECONDS) < RELEASE_SETTLE_SECONDS
        if now and key not in state.unseen and not settling and (patch := pods.release_patch(now)):
            call = (functools.partial(_delete_and_release, state.api) if deleting and deleting(now)
                    else state.api.patch_pod)
            state.releasing[key] = time.monotonic()
            try:
                await _unseen_until_done(state, namespace, name, call, namespace, name, patch)
            except BaseException:
                state.releasing.pop(key, None)
                raise


def _delete_and_release(api: kube.Client, namespace: str, name: str, patch: list[dict]) -> None:
    api.delete_pod(namespace, name)
    api.patch_pod(namespace, name, patch)


async def _release_later(state: State, namespace: str, held: list[dict],
                         deleting: Callable[[dict], bool] | None = None) -> None:
    """``_release`` outside a reconciliation: a pod that could not be let go is held until the next
    one (a pod event, or the resync of workflows with pods held)."""
    try:
        await _release(state, namespace, held, deleting)
    except (kube.Refused, kube.Busy) as refused:
        logging.getLogger("ferry.operator").info("releasing pods in %s: %s; trying again later", namespace, refused)


async def _unseen_until_done(state: State, namespace: str, pod_name: str, call, *args) -> None:
    """Make ``call`` on a pod, marked unseen from before it (its event may come before the answer)
    until its event arrives; a call that fails leaves nothing to wait for."""
    state.unseen.add((namespace, pod_name))
    try:
        await asyncio.to_thread(call, *args)
    except BaseException:
        state.unseen.discard((namespace, pod_name))
        raise


async def _stop(state: State, namespace: str, pod_names: list[str]) -> None:
    """Delete pods with the short ``pods.STOP_GRACE_SECONDS``: their outputs are not wanted."""
    for pod_name in pod_names:
        await asyncio.to_thread(state.api.delete_pod, namespace, pod_name)


def _invalid(status: resource.WorkflowStatus, problems: str) -> scheduler.Step:
    """A spec the CRD let through but the models reject (e.g. an older CRD), or one naming another
    namespace's data: fail, never crash."""
    now = scheduler.timestamp(datetime.datetime.now(datetime.timezone.utc))
    failed = status.model_copy(update={"phase": resource.Phase.FAILED, "message": f"invalid workflow: {problems}",
                                       "started_at": status.started_at or now, "finished_at": now})
    return scheduler.Step(failed, events=[("Warning", "InvalidWorkflow", failed.message)])
