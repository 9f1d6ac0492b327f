"""Store credentials a task pod may hold: short-lived, and good only for its own namespace's folder.

The storage Secret's long-lived keys reach a single container of a task pod, ``ferry-credentials``
(a native sidecar started first). It trades them with the store's STS (``AssumeRole``, or
``GetFederationToken`` on AWS without a role) for temporary credentials whose session policy
allows only the namespace's folder and the URIs the pod's plan names, writes them to
``ferry.data.credentials.CREDENTIALS_FILE`` on an in-memory volume, and renews them before they expire. Every other
container, the task's own Python code included, reads that file (``FERRY_S3_CREDENTIALS_FILE``):
a task can reach what its namespace may reach, for as long as it runs, and never the keys.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import signal
import time
from typing import Any

from ferry.api import taskpod
from ferry.core import errors, uris
from ferry.data import credentials as file_, settings as settings_
from ferry.pod import podruntime

DURATION_SECONDS = 3600
"""Lifetime asked for; renewed after two thirds of it, so at least 20 minutes are left whenever
the sidecar stops (the publisher may still be uploading then)."""
MAX_POLICY = 2048
"""STS refuses a session policy longer than this (packed JSON)."""
PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/ferry-task"
"""S3-compatible stores (MinIO, Ceph) scope the caller's own identity and ignore the role."""

_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                   "s3:ListMultipartUploadParts"]


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key.rstrip("/")


def session_policy(root: str, reads: list[str]) -> dict[str, Any]:
    """IAM policy: read and write under ``root`` (the namespace's folder), read ``reads`` (objects
    or folders the plan names elsewhere). Reads of many URIs in one bucket widen to the bucket
    when the policy would not fit STS's limit; writes never widen."""
    bucket, key = _bucket_key(root)
    statements: list[dict] = [
        {"Effect": "Allow", "Action": _OBJECT_ACTIONS, "Resource": [f"arn:aws:s3:::{bucket}/{key}/*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"{key}/*"]}}},
    ]
    outside = sorted({_bucket_key(uri) for uri in reads if uris.scheme(uri) == "s3"
                      and not uris.as_directory(uri).startswith(uris.as_directory(root))})
    policy = {"Version": "2012-10-17", "Statement": statements}
    for whole_buckets in (False, True):
        if not outside:
            break
        if whole_buckets:
            objects = {f"arn:aws:s3:::{b}/*" for b, _ in outside}
        else:
            objects = {f"arn:aws:s3:::{b}/{k}{tail}" for b, k in outside for tail in ("", "/*")}
        listing = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": sorted({f"arn:aws:s3:::{b}" for b, _ in outside})}
        if not whole_buckets:
            listing["Condition"] = {"StringLike": {"s3:prefix": sorted({f"{k}/*" for _, k in outside})}}
        policy = {"Version": "2012-10-17", "Statement": [
            *statements, {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": sorted(objects)}, listing]}
        if len(json.dumps(policy, separators=(",", ":"))) <= MAX_POLICY:
            break
    return policy


def plan_reads(plan: taskpod.PodPlan) -> list[str]:
    """The stored URIs a pod's plan names: its inputs, its code archive, and values that are URIs
    (a sensor's path, a Python task's ``str`` argument): the spec named them, the task may read them.
    A map's split reads what the map goes over, its items that directory's or asset's files."""
    over = [plan.split.over] if plan.split else []
    named = [ref.uri or (ref.result and ref.result.uri) for ref in [*plan.inputs.values(), *over]]
    named += [value for value in plan.values.values() if isinstance(value, str) and uris.scheme(value) == "s3"]
    named += [plan.item.source] if plan.item else []
    return [*(uri for uri in named if uri), *([plan.code] if plan.code else [])]


def mint(settings: settings_.Settings, policy: dict, session_name: str) -> dict[str, str]:
    """Temporary credentials limited by ``policy``, from the store's STS, as the file holds them.

    Retried through an outage for ``settings.retry_seconds`` like every transfer; a refusal is
    final and says how to turn scoping off for a store that cannot do it."""
    import boto3
    import botocore.exceptions

    secret = settings.s3_secret_access_key
    endpoint = settings.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    sts = boto3.session.Session(
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        region_name=settings.s3_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
    ).client("sts", endpoint_url=endpoint)
    packed = json.dumps(policy, separators=(",", ":"))
    name = "".join(c if c.isalnum() or c in "=,.@-" else "-" for c in session_name)[:32].ljust(2, "-")
    first_failure = time.monotonic()
    while True:
        try:
            if settings.s3_role_arn or endpoint:
                answer = sts.assume_role(RoleArn=settings.s3_role_arn or PLACEHOLDER_ROLE, RoleSessionName=name,
                                         Policy=packed, DurationSeconds=DURATION_SECONDS)
            else:
                answer = sts.get_federation_token(Name=name, Policy=packed, DurationSeconds=DURATION_SECONDS)
            break
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError) as error:
            if time.monotonic() - first_failure > settings.retry_seconds:
                raise errors.StoreUnavailableError(
                    f"the store's STS did not answer for {settings.retry_seconds:g}s: {error}") from error
            time.sleep(2)
        except botocore.exceptions.ClientError as error:
            raise PermissionError(
                f"the store refused to issue credentials scoped to this namespace ({error}). Ferry gives task "
                f"pods only such credentials; for a store without STS, or with IRSA, turn it off with the chart's "
                f"storage.scopedCredentials: false (docs/security.md says what a task can reach then)") from error
    issued = answer["Credentials"]
    return {"AccessKeyId": issued["AccessKeyId"], "SecretAccessKey": issued["SecretAccessKey"],
            "SessionToken": issued["SessionToken"], "Expiration": issued["Expiration"].isoformat()}


def write(path: pathlib.Path, issued: dict[str, str]) -> None:
    """Replace the file at once, so a reader never sees half of it. Readable by every container of
    the pod (whatever its user): the volume is the pod's own."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(issued))
    temporary.chmod(0o644)
    os.replace(temporary, path)



def renew_at(issued: dict[str, str], now: datetime.datetime) -> float:
    """Seconds from ``now`` until the credentials should be renewed: after two thirds of their life."""
    left = (datetime.datetime.fromisoformat(issued["Expiration"]) - now).total_seconds()
    return max(10.0, left - DURATION_SECONDS / 3)


def run_sidecar() -> int:
    """``ferry pod credentials``: issue, write, renew until the kubelet stops the pod's sidecars."""
    plan = podruntime.read_plan()
    settings = settings_.Settings.from_env()
    policy = session_policy(settings.raw_data_prefix, plan_reads(plan))
    path = pathlib.Path(os.environ.get("FERRY_S3_CREDENTIALS_FILE") or file_.CREDENTIALS_FILE)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        while True:
            issued = mint(settings, policy, f"{plan.workflow}.{plan.task}")
            write(path, issued)
            wait = renew_at(issued, datetime.datetime.now(datetime.timezone.utc))
            if signal.sigtimedwait({signal.SIGTERM}, wait) is not None:
                return 0
    except Exception as error:  # the operator reads it from the container's last state
        taskpod.write_termination_message(f"{type(error).__name__}: {error}")
        raise
