"""Smoke tests that prove the test cluster is real: API server, RBAC, controller manager, test
node, and the S3 server. They run unchanged against a real cluster (``FERRY_TEST_KUBECONFIG``)."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml
from kubernetes import client

from tests.cluster import versions
from tests.cluster.fixtures import Cluster, eventually

pytestmark = pytest.mark.cluster

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.smoke.ferry.dev}
spec:
  group: smoke.ferry.dev
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer, minimum: 1}}}
          status: {type: object, properties: {phase: {type: string}}}
"""


def pod_phase(cluster: Cluster, namespace: str, name: str, phases=("Succeeded", "Failed"), timeout=90) -> client.V1Pod:
    core = client.CoreV1Api(cluster.api_client())

    def finished():
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in phases else None

    return eventually(finished, timeout, what=f"pod {name} to reach {'/'.join(phases)}")


def apply(cluster: Cluster, namespace: str, manifest: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=textwrap.dedent(manifest))


def statuses_by_name(pod: client.V1Pod) -> dict[str, client.V1ContainerStatus]:
    return {s.name: s for s in [*(pod.status.init_container_statuses or []), *pod.status.container_statuses]}


def test_server_runs_the_pinned_kubernetes_version(cluster: Cluster):
    if not cluster.local:
        pytest.skip("the version of an external cluster is its own")
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == versions.KUBERNETES


def test_crd_custom_resource_and_status_subresource(cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-f", "-", input=CRD)
    eventually(lambda: cluster.kubectl("get", "gadgets", "-n", namespace, check=False).returncode == 0, 30,
               what="the CRD to be served")
    apply(cluster, namespace, "apiVersion: smoke.ferry.dev/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 2}\n")

    # The schema is enforced at admission.
    bad = cluster.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                          input="apiVersion: smoke.ferry.dev/v1\nkind: Gadget\nmetadata: {name: g2}\nspec: {size: 0}\n")
    assert bad.returncode != 0 and "spec.size" in bad.stderr

    # Status only changes through the status subresource.
    cluster.kubectl("patch", "gadget", "g1", "-n", namespace, "--type=merge", "-p", '{"status":{"phase":"Ignored"}}')
    cluster.kubectl("patch", "gadget", "g1", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"Ready"}}')
    gadget = json.loads(cluster.kubectl("get", "gadget", "g1", "-n", namespace, "-o", "json").stdout)
    assert gadget["status"] == {"phase": "Ready"}
    assert gadget["spec"] == {"size": 2}


def test_rbac_denies_a_service_account_without_a_role(cluster: Cluster, namespace: str, tmp_path):
    sa_config = cluster.kubeconfig_for(namespace, "default", tmp_path / "sa.kubeconfig")
    denied = cluster.kubectl("get", "pods", "-n", namespace, kubeconfig=sa_config, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert f"system:serviceaccount:{namespace}:default" in denied.stderr

    apply(cluster, namespace, """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: pod-reader}
        rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: pod-reader}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
        subjects: [{kind: ServiceAccount, name: default}]
    """)
    allowed = eventually(lambda: cluster.kubectl("get", "pods", "-n", namespace, kubeconfig=sa_config,
                                                 check=False).returncode == 0, 30, what="the RoleBinding to apply")
    assert allowed
    still_denied = cluster.kubectl("create", "configmap", "x", "-n", namespace, kubeconfig=sa_config, check=False)
    assert "forbidden" in still_denied.stderr.lower()


def test_pod_with_init_container_native_sidecar_and_main_succeeds(cluster: Cluster, namespace: str):
    apply(cluster, namespace, """
        apiVersion: v1
        kind: Pod
        metadata: {name: shapes}
        spec:
          restartPolicy: Never
          volumes: [{name: work, emptyDir: {}}]
          initContainers:
          - name: fetch
            image: busybox:1.36
            command: [sh, -c, 'echo "from init" > /work/input.txt']
            volumeMounts: [{name: work, mountPath: /work}]
          - name: sidecar
            image: busybox:1.36
            restartPolicy: Always
            command: [sh, -c]
            args:
            - |
              echo running > /work/sidecar.txt
              trap 'echo "stopped by SIGTERM" > /dev/termination-log; exit 0' TERM
              while true; do sleep 1; done
            volumeMounts: [{name: work, mountPath: /work}]
          containers:
          - name: main
            image: busybox:1.36
            env: [{name: GREETING, value: hello}, {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
            command: [sh, -c, 'echo "$(GREETING) $POD $(cat /work/input.txt) sidecar=$(cat /work/sidecar.txt)" > /dev/termination-log']
            volumeMounts: [{name: work, mountPath: /work}]
    """)
    pod = pod_phase(cluster, namespace, "shapes")
    assert pod.status.phase == "Succeeded"
    statuses = statuses_by_name(pod)
    assert statuses["fetch"].state.terminated.exit_code == 0
    main = statuses["main"].state.terminated
    assert main.exit_code == 0
    assert main.message.strip() == "hello shapes from init sidecar=running"
    sidecar = eventually(lambda: statuses_by_name(pod_phase(cluster, namespace, "shapes"))["sidecar"].state.terminated,
                         60, what="the sidecar to be stopped")
    assert sidecar.message.strip() == "stopped by SIGTERM"


def test_failing_pod_reports_its_exit_code(cluster: Cluster, namespace: str):
    apply(cluster, namespace, """
        apiVersion: v1
        kind: Pod
        metadata: {name: fails}
        spec:
          restartPolicy: Never
          containers:
          - {name: main, image: busybox:1.36, command: [sh, -c, 'echo oops; exit 3'],
             terminationMessagePolicy: FallbackToLogsOnError}
    """)
    pod = pod_phase(cluster, namespace, "fails")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert terminated.message.strip() == "oops"
    logs = cluster.kubectl("logs", "fails", "-n", namespace).stdout
    assert logs.strip() == "oops"


def test_failing_init_container_fails_the_pod_before_main_runs(cluster: Cluster, namespace: str):
    apply(cluster, namespace, """
        apiVersion: v1
        kind: Pod
        metadata: {name: init-fails}
        spec:
          restartPolicy: Never
          initContainers: [{name: setup, image: busybox:1.36, command: [sh, -c, 'exit 7']}]
          containers: [{name: main, image: busybox:1.36, command: ['true']}]
    """)
    pod = pod_phase(cluster, namespace, "init-fails")
    assert pod.status.phase == "Failed"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 7
    assert pod.status.container_statuses[0].state.terminated is None


def test_secrets_service_account_token_and_per_pod_volumes(cluster: Cluster, namespace: str):
    apply(cluster, namespace, """
        apiVersion: v1
        kind: Secret
        metadata: {name: creds}
        stringData: {token: s3cr3t}
    """)
    pods = []
    for name in ("left", "right"):
        pods.append(name)
        apply(cluster, namespace, f"""
            apiVersion: v1
            kind: Pod
            metadata: {{name: {name}}}
            spec:
              restartPolicy: Never
              volumes: [{{name: scratch, emptyDir: {{}}}}, {{name: creds, secret: {{secretName: creds}}}}]
              containers:
              - name: main
                image: busybox:1.36
                env: [{{name: TOKEN, valueFrom: {{secretKeyRef: {{name: creds, key: token}}}}}}]
                command: [sh, -c]
                args:
                - |
                  echo {name} > /scratch/me; sleep 2
                  echo "$(cat /scratch/me) $TOKEN $(cat /etc/creds/token) $(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)" > /dev/termination-log
                  test -s /var/run/secrets/kubernetes.io/serviceaccount/token
                volumeMounts: [{{name: scratch, mountPath: /scratch}}, {{name: creds, mountPath: /etc/creds, readOnly: true}}]
        """)
    for name in pods:
        pod = pod_phase(cluster, namespace, name)
        assert pod.status.phase == "Succeeded", pod.status
        message = pod.status.container_statuses[0].state.terminated.message.strip()
        assert message == f"{name} s3cr3t s3cr3t {namespace}"


def test_unknown_image_stays_pending_with_a_reason(cluster: Cluster, namespace: str):
    apply(cluster, namespace, """
        apiVersion: v1
        kind: Pod
        metadata: {name: no-image}
        spec:
          restartPolicy: Never
          containers: [{name: main, image: registry.invalid/ferry/does-not-exist:0, command: ['true']}]
    """)
    core = client.CoreV1Api(cluster.api_client())

    def pull_failed():
        statuses = core.read_namespaced_pod("no-image", namespace).status.container_statuses or []
        reason = statuses and statuses[0].state.waiting and statuses[0].state.waiting.reason
        return reason in ("ErrImagePull", "ImagePullBackOff")

    eventually(pull_failed, 90, what="ErrImagePull or ImagePullBackOff")
    assert core.read_namespaced_pod("no-image", namespace).status.phase == "Pending"


def test_deployment_gets_its_pod_through_the_controller_manager(cluster: Cluster, namespace: str):
    apply(cluster, namespace, """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          replicas: 1
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              terminationGracePeriodSeconds: 2
              containers: [{name: web, image: busybox:1.36, command: [sh, -c, 'while true; do sleep 1; done']}]
    """)
    core = client.CoreV1Api(cluster.api_client())

    def running_pod():
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return [p for p in pods if p.status.phase == "Running"]

    pod = eventually(running_pod, 90, what="the Deployment's pod to run")[0]
    assert pod.metadata.owner_references[0].kind == "ReplicaSet"
    assert pod.spec.node_name

    # Deleting the Deployment lets the garbage collector remove the ReplicaSet and its pod.
    cluster.kubectl("delete", "deployment", "web", "-n", namespace, "--cascade=background")
    eventually(lambda: not core.list_namespaced_pod(namespace, label_selector="app=web").items, 90,
               what="the garbage collector to remove the pod")


@pytest.mark.s3
def test_object_round_trips_through_the_s3_server(s3):
    client_ = s3.client()
    body = b"ferry " * 1000
    client_.put_object(Bucket=s3.bucket, Key="smoke/hello.txt", Body=body)
    listed = client_.list_objects_v2(Bucket=s3.bucket, Prefix="smoke/")
    assert [o["Key"] for o in listed["Contents"]] == ["smoke/hello.txt"]
    assert client_.get_object(Bucket=s3.bucket, Key="smoke/hello.txt")["Body"].read() == body
    with pytest.raises(client_.exceptions.NoSuchKey):
        client_.get_object(Bucket=s3.bucket, Key="smoke/missing.txt")


def test_kubeconfig_for_a_service_account_is_a_real_identity(cluster: Cluster, namespace: str, tmp_path):
    sa_config = cluster.kubeconfig_for(namespace, "default", tmp_path / "sa.kubeconfig")
    review = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=sa_config)
    assert yaml.safe_load(review.stdout)["status"]["userInfo"]["username"] == \
        f"system:serviceaccount:{namespace}:default"
