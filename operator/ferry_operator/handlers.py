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
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime
import json
import logging
import time
from collections.abc import Callable

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
DEADLINE_MARGIN_SECONDS = 0.5
"""Woken this long after a deadline: status times have whole seconds, and deadlines are strict."""

_locks: dict[tuple[str, str], asyncio.Lock] = collections.defaultdict(asyncio.Lock)
_queued: set[tuple[str, str]] = set()
_refusals: dict[tuple[str, str], str] = {}
_wakeups: dict[tuple[str, str], asyncio.TimerHandle] = {}
_background: set[asyncio.Task] = set()
_gone: set[tuple[str, str]] = set()
"""Workflows whose deletion is done: their lock goes once the reconciliation holding it ends."""
_deleting: dict[tuple[str, str], dict] = {}
"""Workflows being deleted, as their latest event showed them: every event of their pods reconciles
them, and reading each afresh would be a GET per pod event (a thousand for a 1,000-pod workflow)."""
_mount_checks: dict[str, tuple[float, asyncio.Future]] = {}
"""Namespace → when its ``FailedMount`` events were last read, and the reading (by pod uid)."""
_config: Config | None = None
_task_pods: kopf.Index | None = None
_unseen: set[tuple[str, str]] = set()
"""Pods (namespace, name) the operator created or released whose event has not reached the index
yet: not created again, nor released twice, meanwhile."""


@kopf.index("", "v1", "pods", labels={pods.LABEL_WORKFLOW: kopf.PRESENT})
def task_pods(namespace: str, body: kopf.Body, **_) -> dict:
    """Each workflow's pods that a reconciliation may still read, by (namespace, owner's name)."""
    owner, kept = pods.owner_name(body), pods.summary(body)
    return {(namespace, owner): kept} if owner and kept else {}


def _pods_of(namespace: str, name: str) -> list[dict]:
    """The pods of workflows named ``name`` (a same-named older one's too; ``pods.owned`` tells)."""
    return list(_task_pods[namespace, name]) if (namespace, name) in _task_pods else []


def _spawn(coroutine) -> None:
    """Run ``coroutine`` in the background, held until it ends (asyncio keeps only weak ones); an
    error it raises is logged."""
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_ended)


def _ended(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logging.getLogger("ferry.operator").error("background work failed", exc_info=error)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, logger: logging.Logger, memo: kopf.Memo,
                    task_pods: kopf.Index, **_) -> None:
    global _config, _task_pods
    _config, _task_pods = Config.from_env(), task_pods
    kube.login()
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
    _spawn(_resync())
    logger.info("raw data prefix %s, runtime image %s", _config.raw_data_prefix, _config.runtime_image)


async def _resync() -> None:
    """Reconcile every running workflow, and every finished one with pods still held or past its
    TTL (its deletion refused, say), once per ``RESYNC_SECONDS``, spread over the period."""
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        running = bodies.known() + [key for key in bodies.finished_keys()
                                    if key in _task_pods or (_due(*key) or now) < now]
        for namespace, name in running:
            _spawn(request(namespace, name))
            await asyncio.sleep(RESYNC_SECONDS / len(running))
        if not running:
            await asyncio.sleep(RESYNC_SECONDS)


@kopf.on.event(**WORKFLOWS)
async def workflow_changed(type: str | None, body: kopf.Body, namespace: str, name: str, status: dict,
                           **_) -> None:
    """A workflow created, listed at the operator's start (``type`` None), changed or deleted. An
    event that only echoes the operator's own status write (``bodies.offer``) asks for nothing."""
    if type == "DELETED":
        bodies.forget(namespace, name)
        _deleting.pop((namespace, name), None)
    elif body["metadata"].get("deletionTimestamp"):
        bodies.forget(namespace, name)
        if WORKFLOW_FINALIZER in (body["metadata"].get("finalizers") or []):
            _deleting[(namespace, name)] = {**body}
            _spawn(request(namespace, name))
        else:
            _deleting.pop((namespace, name), None)
    elif bodies.settled(body):
        offered = bodies.offer({**body})
        # Pods still held (the operator stopped, or the API was busy, between the last status write
        # and their release), or a TTL to arm (seen at the operator's start) or to act on.
        if (namespace, name) in _task_pods or (offered and _due(namespace, name) is not None):
            _spawn(request(namespace, name))
    elif bodies.offer({**body}):  # Kopf gives each event a body of its own: a shallow copy is enough
        _spawn(request(namespace, name))


async def _let_go(namespace: str, name: str, body: dict) -> None:
    """Stop a deleted workflow's pods, release them, delete its objects (``artifactCleanup``), and
    remove ``WORKFLOW_FINALIZER``; tried again after ``RETRY_SECONDS`` if the API refuses any of it.
    Each step is recorded in the cluster (the pods, the cleanup pod), so a restarted operator
    takes it up where it stood."""
    meta = body["metadata"]
    try:
        owned = pods.owned(_pods_of(namespace, name), meta["uid"])
        cleaner = owned.pop(pods.cleanup_pod_name(name), None)
        await _stop(namespace, [pod_name for pod_name, pod in owned.items() if not pod["metadata"].get("deletionTimestamp")])
        await _release(namespace, list(owned.values()))
        if (body.get("spec") or {}).get("artifactCleanup") == resource.ArtifactCleanup.ON_DELETION.value:
            if not await _cleaned(namespace, name, body, owned, cleaner):
                return  # the pods' events bring it back
            await _release(namespace, [cleaner] if cleaner else [])
        for _ in range(3):  # the finalizers changed meanwhile: read them again
            ops = patches.finalizer_removed(meta, WORKFLOW_FINALIZER)
            if not ops or await asyncio.to_thread(kube.patch_workflow, namespace, name, ops):
                break
            meta = ((await asyncio.to_thread(kube.get_workflow, namespace, name)) or {"metadata": {}})["metadata"]
    except (kube.Refused, kube.Busy) as refused:
        logging.getLogger("ferry.operator").error("deleting workflow %s/%s: %s", namespace, name, refused)
        asyncio.get_running_loop().call_later(RETRY_SECONDS, lambda: _spawn(request(namespace, name)))
        return
    key = (namespace, name)
    metrics.forget(key)
    _refusals.pop(key, None)
    _deleting.pop(key, None)
    _gone.add(key)
    if (handle := _wakeups.pop(key, None)) is not None:
        handle.cancel()


async def _cleaned(namespace: str, name: str, body: dict, task_pods: dict[str, dict], cleaner: dict | None) -> bool:
    """Whether the deleted workflow's objects are dealt with: its cleanup pod ended (reported as
    an Event), or cannot be given its plan. The pod starts once no task pod runs any more: a
    stopping one could still be uploading into the folder it empties (past its grace, it cannot)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if cleaner is None:
        ends = [results.deadline(pod, _config.start_timeout_seconds) for pod in task_pods.values()
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        if any(end is None or end > now for end in ends):
            _wake_at(namespace, name, max(filter(None, ends), default=None))
            return False
        others = await asyncio.to_thread(kube.list_workflows, namespace)
        # Off the event loop: it walks every Workflow of the namespace.
        plan = await asyncio.to_thread(cleanup.plan, _config.namespace_root(namespace), body["metadata"]["uid"], others)
        if len(json.dumps(plan)) > cleanup.PLAN_LIMIT:
            kopf.event(body, type="Warning", reason="ArtifactCleanupSkipped",
                       message=f"too many references from other workflows for a cleanup pod; the objects under "
                               f"{plan['folder']} stay: ferry gc removes what nothing references")
            return True
        pod = pods.build_cleanup_pod(body, plan, _config)
        await _unseen_until_done(namespace, pod["metadata"]["name"], kube.create_pod, pod)
        return False
    outcome = results.cleanup_outcome(cleaner, now, _config.start_timeout_seconds)
    if outcome is None:  # woken by its events, or at its start timeout if it is stuck
        _wake_at(namespace, name, results.deadline(cleaner, _config.start_timeout_seconds))
        return False
    kind, reason, message = outcome
    kopf.event(body, type=kind, reason=reason, message=message)
    await _stop(namespace, [cleaner["metadata"]["name"]] if kind == "Warning" else [])  # one stuck starting
    return True


@kopf.on.event("", "v1", "pods", labels={pods.LABEL_WORKFLOW: kopf.PRESENT})
async def pod_changed(namespace: str, name: str, body: kopf.Body, **_) -> None:
    _unseen.discard((namespace, name))  # the index holds this event's state now
    if owner := pods.owner_name(body):
        _spawn(request(namespace, owner))


async def request(namespace: str, name: str) -> None:
    """Reconcile the workflow, once per change: one that has not started yet covers this one.

    Event handlers spawn it rather than wait for it: Kopf handles one object's events in order, so
    a handler waiting for a reconciliation (itself waiting for another one's status write) would
    hold back that pod's next event, and with it the index, by one round trip or more."""
    key = (namespace, name)
    if key in _queued:  # a reconciliation that has not started yet will see this change too
        return
    _queued.add(key)
    async with _locks[key]:
        _queued.discard(key)
        try:
            await reconcile_workflow(namespace, name)
        except kube.Busy as busy:
            logging.getLogger("ferry.operator").info("workflow %s/%s: %s; trying again", namespace, name, busy)
            _wake_at(namespace, name, datetime.datetime.now(datetime.timezone.utc)
                     + datetime.timedelta(seconds=BUSY_RETRY_SECONDS - DEADLINE_MARGIN_SECONDS))
        except kube.Refused as refused:
            await _report_refusal(namespace, name, refused)
        else:
            _refusals.pop(key, None)
    if key in _gone and key not in _queued:  # deleted: nothing will wait on its lock again
        _gone.discard(key)
        _locks.pop(key, None)


async def _report_refusal(namespace: str, name: str, refused: kube.Refused) -> None:
    """Say it where users look (the Workflow's status and events) and in the log, once per cause;
    the next trigger tries again, so fixing the permission is enough to resume."""
    message = str(refused)
    if _refusals.get((namespace, name)) == message:
        return
    _refusals[(namespace, name)] = message
    logging.getLogger("ferry.operator").error("workflow %s/%s: %s", namespace, name, message)
    body = {"apiVersion": resource.API_VERSION, "kind": resource.KIND,
            "metadata": {"name": name, "namespace": namespace}}
    kopf.event(body, type="Warning", reason="APIRefused", message=message)
    if bodies.finished(namespace, name):
        return  # its message says why it failed: the event and the log tell this
    try:
        await asyncio.to_thread(kube.merge_status, namespace, name, {"message": message})
    except (kube.Refused, kube.Busy):
        pass  # the event and the log still say it


async def reconcile_workflow(namespace: str, name: str) -> None:
    for retry in range(5):  # retried only when the status was written by someone else meanwhile
        if not retry and (finished := bodies.finished(namespace, name)):
            due = _due(namespace, name)
            if due is not None and due <= datetime.datetime.now(datetime.timezone.utc):
                # Ferry's finalizer still runs (``_let_go``); the pods go by their owner references.
                await asyncio.to_thread(kube.delete_workflow, namespace, name, finished.uid)
                return
            _wake_at(namespace, name, due)
            # Its held pods, if releasing them failed after its last status write.
            owned = pods.owned(_pods_of(namespace, name), finished.uid)
            await _release(namespace, [pod for pod_name, pod in owned.items() if pod_name not in finished.running],
                           lambda pod: retention.deletes(finished.pod_retention, pod, finished.succeeded))
            return
        body = (bodies.get(namespace, name) or _deleting.get((namespace, name))) if not retry else None
        if body is None:
            body = await asyncio.to_thread(kube.get_workflow, namespace, name)
            if body is None:
                return
            if not body["metadata"].get("deletionTimestamp"):  # a deleted one is in ``_deleting`` by its event
                bodies.offer(body)
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            if WORKFLOW_FINALIZER in (meta.get("finalizers") or []):
                await _let_go(namespace, name, body)
            return
        if WORKFLOW_FINALIZER not in (meta.get("finalizers") or []):  # before its first pod
            body = await asyncio.to_thread(kube.patch_workflow, namespace, name,
                                           patches.finalizer_added(meta, WORKFLOW_FINALIZER), meta["resourceVersion"])
            if body is None:
                continue
            bodies.offer(body)
        status = resource.WorkflowStatus.model_validate(body.get("status") or {})
        if bodies.settled(body):
            metrics.observe((namespace, name), None, status, status)
            _expire_when_due(namespace, name)
            return
        try:
            spec = bodies.spec(body)
        except pydantic.ValidationError as error:
            problems = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            spec, step = None, _invalid(status, problems)
        if spec is not None and (foreign := tenancy.foreign_uris(spec, namespace, _config)):
            spec, step = None, _invalid(status, "; ".join(foreign))
        if spec is not None:
            listed = _pods_of(namespace, name)
            owned = pods.owned(listed, body["metadata"]["uid"])

            now = datetime.datetime.now(datetime.timezone.utc)
            foreign = {p["metadata"]["name"] for p in listed} - set(owned)
            unborn: list[str] = []

            stuck = {pod_name: await _mount_failures(namespace, pod["metadata"]["uid"])
                     for pod_name, pod in owned.items() if results.stuck_starting(pod, now, _config.start_timeout_seconds)}

            def observe(task: resource.Task, pod_name: str) -> scheduler.Attempt:
                pod = owned.get(pod_name)
                if pod:
                    return tenancy.checked(results.read_attempt(pod, [o.name for o in task.outputs], now,
                                                                _config.start_timeout_seconds, stuck.get(pod_name, [])),
                                           namespace, _config)
                if pod_name in foreign:  # a same-named earlier workflow's, still stopping
                    return scheduler.Attempt(False, message=f"waiting for pod {pod_name} of an earlier workflow "
                                                            f"named {name} to go")
                # Never created (refused while the earlier one's pod was there): create it now. A pod of
                # ours cannot vanish unseen: Ferry's finalizer holds it until its end is recorded.
                if (namespace, pod_name) not in _unseen:
                    unborn.append(task.name)
                return scheduler.Attempt(False)

            step = scheduler.step(name, spec, status, observe, now)
            step.create += [(task, step.status.tasks[task].attempts) for task in unborn
                            if step.status.tasks[task].phase == resource.Phase.RUNNING]
            for task, attempt in step.create:
                pod = pods.build_pod(body, spec, step.status, task, attempt, _config)
                pod_name = pod["metadata"]["name"]
                if pod_name not in owned and (namespace, pod_name) not in _unseen:  # a retry after a conflict
                    await _unseen_until_done(namespace, pod_name, kube.create_pod, pod)
            await _stop(namespace, step.delete)
        step.status.observed_generation = body["metadata"].get("generation")
        if step.status != status:
            after = step.status.dump()
            patch = (patches.diff(body["status"], after, "/status") if isinstance(body.get("status"), dict)
                     else [{"op": "add", "path": "/status", "value": after}])
            written = await asyncio.to_thread(kube.patch_status, namespace, name, patch,
                                              body["metadata"]["resourceVersion"])
            if written is None:
                continue
            bodies.offer(written)
            metrics.observe((namespace, name), spec, status, step.status)
            for kind, reason, message in step.events:
                if _config.posts(kind, reason):
                    kopf.event(written, type=kind, reason=reason, message=message)
            if step.status.phase in scheduler.DONE:
                _expire_when_due(namespace, name)
        if spec is not None:  # only once the status holds what they told, and in the background:
            succeeded = retention.succeeded_pods(step.status)  # the next one need not wait
            _spawn(_release_later(namespace, pods.releasable(owned, step.status),
                                  lambda pod: retention.deletes(spec.pod_retention, pod, succeeded)))
            running = {ts.pod_name for ts in step.status.tasks.values() if ts.phase == resource.Phase.RUNNING}
            _wake_at(namespace, name, min(filter(None, [
                scheduler.next_deadline(spec, step.status),
                *(results.deadline(pod, _config.start_timeout_seconds) for pod_name, pod in owned.items()
                  if pod_name in running)]), default=None))
        return


def _due(namespace: str, name: str) -> datetime.datetime | None:
    """When the workflow, known finished, is deleted (None: never, or not known finished)."""
    finished = bodies.finished(namespace, name)
    return finished and retention.due(finished.finished_at,
                                      retention.ttl(finished.ttl, _config.ttl_seconds_after_finished))


def _expire_when_due(namespace: str, name: str) -> None:
    """Have a finished workflow reconciled when its TTL has passed (at once if it has already: a
    TTL of 0): that reconciliation deletes it."""
    due = _due(namespace, name)
    if due is not None and due <= datetime.datetime.now(datetime.timezone.utc):
        _spawn(request(namespace, name))
    else:
        _wake_at(namespace, name, due)


async def _mount_failures(namespace: str, uid: str) -> list[str]:
    """The pod's ``FailedMount`` messages, from a reading of its namespace's events at most
    ``MOUNT_CHECK_SECONDS`` old, shared by every reconciliation there: a LIST of events is one of
    the API server's dearest calls, and on a busy cluster many pods may wait to start at once (one
    LIST per pod fed back on itself: the slower the API server, the more pods waited, the more
    LISTs)."""
    now, checked = time.monotonic(), _mount_checks.get(namespace)
    if checked is None or now - checked[0] > MOUNT_CHECK_SECONDS:
        checked = _mount_checks[namespace] = (now, asyncio.ensure_future(
            asyncio.to_thread(kube.mount_failures, namespace)))
    try:
        return (await asyncio.shield(checked[1])).get(uid, [])
    except (kube.Refused, kube.Busy):
        if _mount_checks.get(namespace) is checked:  # the next reconciliation reads them again
            del _mount_checks[namespace]
        raise


def _wake_at(namespace: str, name: str, moment: datetime.datetime | None) -> None:
    """Reconcile the workflow just after ``moment``, unless a wake-up no later is already armed. A
    moment already past was seen by the reconciliation that computed it: nothing to arm (a pod
    waiting for room past its start timeout would otherwise wake it in a loop)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if moment is None or moment <= now:
        return
    key, loop = (namespace, name), asyncio.get_running_loop()
    delay = (moment - now).total_seconds() + DEADLINE_MARGIN_SECONDS
    armed = _wakeups.get(key)
    if armed is not None and not armed.cancelled() and armed.when() <= loop.time() + delay:
        return
    if armed is not None:
        armed.cancel()

    def wake() -> None:
        _wakeups.pop(key, None)
        _spawn(request(namespace, name))

    _wakeups[key] = loop.call_later(delay, wake)


async def _release(namespace: str, held: list[dict], deleting: Callable[[dict], bool] | None = None) -> None:
    """Let pods go whose attempts the status has recorded (``pods.RESULT_FINALIZER``); those
    ``deleting`` names (``retention.deletes``) are deleted first: released first, a pod leaves the
    index, and one the operator stopped before deleting would stay until its workflow goes."""
    # The index's state now, not the reconciliation's snapshot: a release's event may have come meanwhile.
    owners = {pods.owner_name(pod) or "" for pod in held}
    current = {p["metadata"].get("uid"): p for owner in owners for p in _pods_of(namespace, owner)}
    for pod in held:
        name, now = pod["metadata"]["name"], current.get(pod["metadata"].get("uid"))
        if now and (namespace, name) not in _unseen and (patch := pods.release_patch(now)):
            call = _delete_and_release if deleting and deleting(now) else kube.patch_pod
            await _unseen_until_done(namespace, name, call, namespace, name, patch)


def _delete_and_release(namespace: str, name: str, patch: list[dict]) -> None:
    kube.delete_pod(namespace, name)
    kube.patch_pod(namespace, name, patch)


async def _release_later(namespace: str, held: list[dict], deleting: Callable[[dict], bool] | None = None) -> None:
    """``_release`` outside a reconciliation: a pod that could not be let go is held until the next
    one (a pod event, or the resync of workflows with pods held)."""
    try:
        await _release(namespace, held, deleting)
    except (kube.Refused, kube.Busy) as refused:
        logging.getLogger("ferry.operator").info("releasing pods in %s: %s; trying again later", namespace, refused)


async def _unseen_until_done(namespace: str, pod_name: str, call, *args) -> None:
    """Make ``call`` on a pod, marked unseen from before it (its event may come before the answer)
    until its event arrives; a call that fails leaves nothing to wait for."""
    _unseen.add((namespace, pod_name))
    try:
        await asyncio.to_thread(call, *args)
    except BaseException:
        _unseen.discard((namespace, pod_name))
        raise


async def _stop(namespace: str, pod_names: list[str]) -> None:
    """Delete pods with the short ``pods.STOP_GRACE_SECONDS``: their outputs are not wanted."""
    for pod_name in pod_names:
        await asyncio.to_thread(kube.delete_pod, namespace, pod_name)


def _invalid(status: resource.WorkflowStatus, problems: str) -> scheduler.Step:
    """A spec the CRD let through but the models reject (e.g. an older CRD), or one naming another
    namespace's data: fail, never crash."""
    now = scheduler.timestamp(datetime.datetime.now(datetime.timezone.utc))
    failed = status.model_copy(update={"phase": resource.Phase.FAILED, "message": f"invalid workflow: {problems}",
                                       "started_at": status.started_at or now, "finished_at": now})
    return scheduler.Step(failed, events=[("Warning", "InvalidWorkflow", failed.message)])
