"""Kopf handlers: thin triggers around ``scheduler.step``.

Any change that matters (a workflow created or resumed after a restart, one of its pods changing,
a deadline: a back-off ending, a timeout) asks for the workflow to be reconciled. Requests for
the same workflow are serialized and coalesced: while one reconciliation runs, any number of new
requests result in exactly one more. Deadlines are armed from each reconciliation's result
(``scheduler.next_deadline``, ``results.deadline``); a slow timer is only the safety net.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime
import hashlib
import json
import logging

import kopf
import pydantic

from ferry import resource, scheduler
from ferry_operator import kube, metrics, pods, results, tenancy
from ferry_operator.config import Config

WORKFLOWS = dict(group=resource.GROUP, version=resource.VERSION, plural=resource.PLURAL)
TIMER_SECONDS = 30.0
"""The safety net's period: every change that matters has an event or an armed deadline."""
DEADLINE_MARGIN_SECONDS = 0.5
"""Woken this long after a deadline: status times have whole seconds, and deadlines are strict."""

_locks: dict[tuple[str, str], asyncio.Lock] = collections.defaultdict(asyncio.Lock)
_queued: set[tuple[str, str]] = set()
_refusals: dict[tuple[str, str], str] = {}
_wakeups: dict[tuple[str, str], asyncio.TimerHandle] = {}
_config: Config | None = None


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """Kopf's last-handled configuration as a digest, not a copy of the spec: all annotations share
    256 KiB, and a large workflow's spec alone can be more. Kopf compares it only to tell an update
    from no change, which a digest tells as well (and Ferry's specs are immutable anyway)."""

    def build(self, *, body, extra_fields=None):
        essence = super().build(body=body, extra_fields=extra_fields)
        return {"sha256": hashlib.sha256(json.dumps(essence, sort_keys=True).encode()).hexdigest()}


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, logger: logging.Logger, memo: kopf.Memo, **_) -> None:
    global _config
    _config = Config.from_env()
    kube.login()
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(kube.CALLS_IN_FLIGHT, thread_name_prefix="ferry-api"))
    # Watching exact namespaces needs no cluster-wide discovery (which a namespaced install may
    # not be allowed to do: Kopf would retry it for a minute before starting).
    settings.scanning.disabled = bool(memo.get("exact_namespaces"))
    # Keep status ours: Kopf's own bookkeeping goes to annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ferry.dev")
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(prefix="ferry.dev")
    settings.posting.level = logging.INFO
    logger.info("raw data prefix %s, runtime image %s", _config.raw_data_prefix, _config.runtime_image)


@kopf.on.resume(**WORKFLOWS)
@kopf.on.create(**WORKFLOWS)
async def workflow_seen(namespace: str, name: str, uid: str, status: dict, **_) -> None:
    if status.get("phase") in scheduler.DONE:
        # Pods still held if the operator stopped between the last status write and their release:
        # checked once per start, not on every event of a finished workflow.
        finished = resource.WorkflowStatus.model_validate(dict(status))
        listed = await asyncio.to_thread(kube.list_pods, namespace, name)
        await _release(namespace, pods.releasable(pods.owned(listed, uid), finished))
        return
    await request(namespace, name)


@kopf.timer(**WORKFLOWS, interval=TIMER_SECONDS,
            when=lambda status, **_: status.get("phase") not in ("Succeeded", "Failed"))
async def workflow_tick(namespace: str, name: str, **_) -> None:
    await request(namespace, name)


@kopf.on.delete(**WORKFLOWS)
async def workflow_deleted(namespace: str, name: str, uid: str, **_) -> None:
    """Stop the workflow's pods within ``pods.STOP_GRACE_SECONDS`` before it goes (Kopf's finalizer
    holds it until then). The garbage collector would give each pod its whole upload grace, and
    a running kill is never shortened: a task whose PID 1 ignores SIGTERM would run to its end."""
    owned = pods.owned(await asyncio.to_thread(kube.list_pods, namespace, name), uid)
    await _stop(namespace, list(owned))
    await _release(namespace, list(owned.values()))
    metrics.forget((namespace, name))
    if (handle := _wakeups.pop((namespace, name), None)) is not None:
        handle.cancel()


@kopf.on.event("", "v1", "pods", labels={pods.LABEL_WORKFLOW: kopf.PRESENT})
async def pod_changed(namespace: str, meta: dict, **_) -> None:
    # The owner's name, not the label: a long name's label is cut (pods.label_value).
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == resource.KIND), None)
    if owner:
        await request(namespace, owner["name"])


async def request(namespace: str, name: str) -> None:
    key = (namespace, name)
    if key in _queued:  # a reconciliation that has not started yet will see this change too
        return
    _queued.add(key)
    async with _locks[key]:
        _queued.discard(key)
        try:
            await reconcile_workflow(namespace, name)
        except kube.Refused as refused:
            await _report_refusal(namespace, name, refused)
        else:
            _refusals.pop(key, None)


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
    try:
        current = await asyncio.to_thread(kube.get_workflow, namespace, name)
        if current is not None:
            current["status"] = {**(current.get("status") or {}), "message": message}
            await asyncio.to_thread(kube.replace_status, current)
    except kube.Refused:
        pass  # the event and the log still say it


async def reconcile_workflow(namespace: str, name: str) -> None:
    for _ in range(5):  # retried only when the status was written by someone else meanwhile
        body = await asyncio.to_thread(kube.get_workflow, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        status = resource.WorkflowStatus.model_validate(body.get("status") or {})
        if status.phase in scheduler.DONE:
            metrics.observe((namespace, name), None, status, status)
            return
        try:
            spec = resource.WorkflowSpec.model_validate(body.get("spec") or {})
        except pydantic.ValidationError as error:
            problems = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            spec, step = None, _invalid(status, problems)
        if spec is not None and (foreign := tenancy.foreign_uris(spec, namespace, _config)):
            spec, step = None, _invalid(status, "; ".join(foreign))
        if spec is not None:
            listed = await asyncio.to_thread(kube.list_pods, namespace, name)
            owned = pods.owned(listed, body["metadata"]["uid"])

            now = datetime.datetime.now(datetime.timezone.utc)
            foreign = {p["metadata"]["name"] for p in listed} - set(owned)
            unborn: list[str] = []

            stuck = {pod_name: await asyncio.to_thread(kube.mount_failures, namespace, pod_name)
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
                unborn.append(task.name)
                return scheduler.Attempt(False)

            step = scheduler.step(name, spec, status, observe, now)
            step.create += [(task, step.status.tasks[task].attempts) for task in unborn
                            if step.status.tasks[task].phase == resource.Phase.RUNNING]
            for task, attempt in step.create:
                pod = pods.build_pod(body, spec, step.status, task, attempt, _config)
                await asyncio.to_thread(kube.create_pod, pod)
            await _stop(namespace, step.delete)
        step.status.observed_generation = body["metadata"].get("generation")
        if step.status != status:
            body["status"] = step.status.dump()
            if not await asyncio.to_thread(kube.replace_status, body):
                continue
            metrics.observe((namespace, name), spec, status, step.status)
            for kind, reason, message in step.events:
                kopf.event(body, type=kind, reason=reason, message=message)
        if spec is not None:  # only once the status holds what they told
            await _release(namespace, pods.releasable(owned, step.status))
            running = {ts.pod_name for ts in step.status.tasks.values() if ts.phase == resource.Phase.RUNNING}
            _wake_at(namespace, name, min(filter(None, [
                scheduler.next_deadline(spec, step.status),
                *(results.deadline(pod, _config.start_timeout_seconds) for pod_name, pod in owned.items()
                  if pod_name in running)]), default=None))
        return


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
        asyncio.ensure_future(request(namespace, name))

    _wakeups[key] = loop.call_later(delay, wake)


async def _release(namespace: str, held: list[dict]) -> None:
    """Let pods go whose attempts the status has recorded (``pods.RESULT_FINALIZER``)."""
    for pod in held:
        patch = pods.release_patch(pod)
        if patch:
            await asyncio.to_thread(kube.patch_pod, namespace, pod["metadata"]["name"], patch)


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
