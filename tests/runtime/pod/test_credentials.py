"""Scoped credentials of a task pod: the policy they carry, and what the real store lets them do."""

from __future__ import annotations

import datetime
import json
import os
import secrets

import botocore.exceptions
import pytest

import ferry
from ferry.api import resource, taskpod
from ferry.pod import credentials
from tests.runtime.conftest import make_settings

ROOT = "s3://bucket/ferry/team-a"


def _resources(policy: dict, action: str) -> set[str]:
    return {r for s in policy["Statement"] if action in s["Action"] for r in s["Resource"]}


def test_the_policy_writes_only_the_namespace_folder_and_reads_the_plan_s_uris():
    policy = credentials.session_policy(ROOT, ["s3://bucket/ferry/team-a/uid/t/1/out",
                                               "s3://public/datasets/x/", "s3://bucket/ferry/code/ab.tar.gz"])
    assert _resources(policy, "s3:PutObject") == _resources(policy, "s3:DeleteObject") == \
        {"arn:aws:s3:::bucket/ferry/team-a/*"}
    assert _resources(policy, "s3:GetObject") == {
        "arn:aws:s3:::bucket/ferry/team-a/*", "arn:aws:s3:::public/datasets/x", "arn:aws:s3:::public/datasets/x/*",
        "arn:aws:s3:::bucket/ferry/code/ab.tar.gz", "arn:aws:s3:::bucket/ferry/code/ab.tar.gz/*"}
    prefixes = {p for s in policy["Statement"] if "Condition" in s for p in s["Condition"]["StringLike"]["s3:prefix"]}
    assert prefixes == {"ferry/team-a/*", "datasets/x/*", "ferry/code/ab.tar.gz/*"}


def test_many_reads_widen_to_their_buckets_but_writes_never_do():
    reads = [f"s3://data/set/{i:04d}/{'x' * 40}" for i in range(100)]
    policy = credentials.session_policy(ROOT, reads)
    assert len(json.dumps(policy, separators=(",", ":"))) <= credentials.MAX_POLICY
    assert _resources(policy, "s3:GetObject") == {"arn:aws:s3:::bucket/ferry/team-a/*", "arn:aws:s3:::data/*"}
    assert _resources(policy, "s3:PutObject") == {"arn:aws:s3:::bucket/ferry/team-a/*"}


def test_renewal_comes_after_two_thirds_of_the_lifetime():
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    issued = {"Expiration": (now + datetime.timedelta(seconds=3600)).isoformat()}
    assert credentials.renew_at(issued, now) == pytest.approx(2400)
    assert credentials.renew_at({"Expiration": now.isoformat()}, now) == 10.0


@pytest.mark.s3
def test_scoped_credentials_reach_their_folder_and_nothing_else(s3, tmp_path):
    """Against the real store: the long-lived keys are traded for ones that write only the namespace's
    folder and read only it and the URIs named, and the store's client reads them from the file."""
    run = secrets.token_hex(4)
    client = s3.client()
    for key in (f"{run}/team-a/mine", f"{run}/team-b/theirs", f"{run}/shared/named", f"{run}/shared/unnamed"):
        client.put_object(Bucket=s3.bucket, Key=key, Body=key.encode())
    root = f"s3://{s3.bucket}/{run}/team-a"
    issuer = make_settings(tmp_path, root)
    issued = credentials.mint(issuer, credentials.session_policy(root, [f"s3://{s3.bucket}/{run}/shared/named"]), "wf.t")
    assert issued["AccessKeyId"] != s3.access_key
    path = tmp_path / "s3.json"
    credentials.write(path, issued)
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    saved = {k: os.environ.pop(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k in os.environ}
    try:
        store = ferry.Store(make_settings(tmp_path, root, s3_credentials_file=path))
        with store.open(f"{root}/mine") as stream:
            assert stream.read() == f"{run}/team-a/mine".encode()
        with store.open(f"s3://{s3.bucket}/{run}/shared/named") as stream:
            assert stream.read() == f"{run}/shared/named".encode()
        (tmp_path / "new").write_text("new")
        store.upload_file(tmp_path / "new", f"{root}/new")
        for uri in (f"s3://{s3.bucket}/{run}/team-b/theirs", f"s3://{s3.bucket}/{run}/shared/unnamed"):
            with pytest.raises(PermissionError, match="403 Forbidden"):
                store.open(uri).read()
        with pytest.raises(PermissionError, match="403 Forbidden"):
            store.upload_file(tmp_path / "new", f"s3://{s3.bucket}/{run}/team-b/planted")
        with pytest.raises(PermissionError, match="403 Forbidden"):  # its manifest, read first
            list(store.list(f"s3://{s3.bucket}/{run}/team-b/"))
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied|403|Forbidden"):
            list(store.backend("s3://").list(f"s3://{s3.bucket}/{run}/team-b/"))
    finally:
        os.environ.update(saved)


def test_a_refusal_says_how_to_turn_scoping_off(monkeypatch, tmp_path):
    class Refusing:
        def assume_role(self, **_):
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")

    import boto3.session
    monkeypatch.setattr(boto3.session.Session, "client", lambda *a, **k: Refusing())
    settings = make_settings(tmp_path, ROOT, s3_endpoint_url="http://127.0.0.1:1")
    with pytest.raises(PermissionError, match="storage.scopedCredentials: false"):
        credentials.mint(settings, credentials.session_policy(ROOT, []), "wf.t")


def test_the_plan_names_its_inputs_and_code():
    plan = taskpod.PodPlan(workflow="w", namespace="n", execution_id="u", task="t", attempt=1, output_prefix=ROOT,
                           code="s3://bucket/ferry/code/c.tar.gz",
                           inputs={"x": {"kind": "file", "uri": "s3://elsewhere/x"}, "v": {"kind": "value", "value": 1}},
                           values={"path": "s3://watched/arrivals.csv", "n": 3, "text": "hello"})
    assert credentials.plan_reads(plan) == ["s3://elsewhere/x", "s3://watched/arrivals.csv",
                                            "s3://bucket/ferry/code/c.tar.gz"]


def test_a_map_s_split_and_items_may_read_the_directory_it_goes_over():
    """A map over a workflow input ``s3://raw/in/`` outside the namespace's folder: its split reads the
    manifest there, and each item one file of it; scoped credentials that named neither refused both."""
    from ferry.api import scheduler

    spec = resource.WorkflowSpec.model_validate({
        "inputs": [{"name": "raw", "kind": "directory", "uri": "s3://raw/in/"}],
        "tasks": [{"name": "m", "function": "pkg.mod:fn", "map": {"over": {"fromInput": "raw"}},
                   "inputs": [{"name": "path", "fromItem": True}]}]})
    common = dict(workflow="wf", namespace="ns", execution_id="uid", root=ROOT)
    split = taskpod.build_unit_plan(spec, resource.WorkflowStatus(), scheduler.Unit("m", "split", 1), **common)
    assert "s3://raw/in/" in credentials.plan_reads(split)
    index = resource.StoredResult(uri=f"{ROOT}/ns/uid/m/split/1/index.json", sha256="0" * 64, size=1)
    status = resource.WorkflowStatus(tasks={"m": resource.TaskStatus(map=resource.MapStatus(
        stage="Items", items=3, units=3, index=index))})
    item = taskpod.build_unit_plan(spec, status, scheduler.Unit("m", "item", 1, 2), **common)
    assert credentials.plan_reads(item) == ["s3://raw/in/"]
    policy = credentials.session_policy(ROOT, credentials.plan_reads(item))
    assert "arn:aws:s3:::raw/in/*" in json.dumps(policy)
