"""The chart on its own: ``helm lint``, ``helm template`` of each install mode, its RBAC verbs,
its configuration as the operator reads it, and values.schema.json rejecting wrong values with a
message. No cluster needed."""

from __future__ import annotations

import json
import pathlib
import tomllib

import pytest
import yaml
from packaging.version import Version

import ferry
from ferry_operator.config import Config
from tests.cluster.fixtures import REPO, Helm
from tests.helm.conftest import CHART, RELEASE_NAMESPACE, template

BUCKET = {"storage": {"bucket": "ferry-data"}}
# The only API access the operator has, whatever the install mode (templates/rbac.yaml says why).
OPERATOR_RULES = [
    {"apiGroups": ["ferry.dev"], "resources": ["workflows"], "verbs": ["get", "list", "watch", "patch", "delete"]},
    {"apiGroups": ["ferry.dev"], "resources": ["workflows/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "create", "delete", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list"]},
]
CRD_OBSERVATION = {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
                   "verbs": ["list", "watch"]}


def chart_meta() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def package_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def semver(version: str) -> str:
    """The SemVer 2 spelling of a PEP 440 version: ``0.1.0.dev0`` → ``0.1.0-dev.0``."""
    v = Version(version)
    pre = []
    if v.pre:
        pre += [{"a": "alpha", "b": "beta", "rc": "rc"}[v.pre[0]], str(v.pre[1])]
    if v.dev is not None:
        pre += ["dev", str(v.dev)]
    return v.base_version + ("-" + ".".join(pre) if pre else "") + (f"+{v.local}" if v.local else "")


def operator_container(objects) -> dict:
    deployment = objects.one("Deployment", "ferry-operator")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def operator_config(objects) -> dict[str, str]:
    return objects.one("ConfigMap", "ferry-operator")["data"]


# -- the chart and its sources of truth ---------------------------------------------------------

@pytest.mark.parametrize("values", ["ci/test-values.yaml", None])
def test_lint(helm: Helm, values: str | None):
    args = ["-f", str(CHART / values)] if values else ["--set", "namespaced=true", "--set", "devObjectStore.enabled=true"]
    result = helm("lint", str(CHART), "--strict", *args)
    assert "0 chart(s) failed" in result.stdout


def test_chart_crds_are_the_generated_crds():
    generated = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    assert generated, "crds/ has no CRD yet (python -m ferry_operator.crd > crds/ferry.dev_workflows.yaml)"
    in_chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert in_chart.keys() == generated.keys(), "helm/ferry/crds/ must hold exactly the files of crds/"
    for name, content in generated.items():
        assert in_chart[name] == content, f"helm/ferry/crds/{name} differs from crds/{name}: cp crds/*.yaml helm/ferry/crds/"


def test_versions_follow_the_package():
    meta = chart_meta()
    assert meta["appVersion"] == package_version() == ferry.__version__
    assert meta["version"] == semver(package_version())


def test_operator_and_task_pods_get_the_same_image_by_default(render):
    objects = render(BUCKET)
    image = operator_container(objects)["image"]
    assert image == f"ghcr.io/ferry-dev/ferry:{chart_meta()['appVersion']}"
    assert operator_config(objects)["FERRY_OPERATOR_RUNTIME_IMAGE"] == image
    assert Config.model_fields["runtime_image"].default == image  # the operator's own default agrees


def test_a_digest_pins_both_images(render):
    digest = "sha256:" + "ab" * 32
    objects = render({**BUCKET, "image": {"repository": "registry.example/ferry", "tag": "1.2.3", "digest": digest}})
    assert operator_container(objects)["image"] == f"registry.example/ferry@{digest}"
    assert operator_config(objects)["FERRY_OPERATOR_RUNTIME_IMAGE"] == f"registry.example/ferry@{digest}"


# -- what an install creates -----------------------------------------------------------------------

def test_default_install_serves_the_cluster_with_exactly_the_verbs_it_uses(render):
    objects = render(BUCKET)
    assert objects.kinds() == {"ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role",
                               "RoleBinding", "Service", "Deployment"}
    role = objects.one("ClusterRole")
    assert role["rules"] == [*OPERATOR_RULES, CRD_OBSERVATION]
    binding = objects.one("ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ferry", "namespace": RELEASE_NAMESPACE}]
    assert "--all-namespaces" in operator_container(objects)["args"]


def test_replicas_elect_a_leader_through_a_lease_in_the_release_namespace(render):
    objects = render({**BUCKET, "operator": {"replicas": 3}})
    assert objects.one("Deployment", "ferry-operator")["spec"]["replicas"] == 3
    container = operator_container(objects)
    assert "--leader-elect" in container["args"]
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} \
        in container["env"]
    role = objects.one("Role", "ferry-leader-election", RELEASE_NAMESPACE)
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]
    assert objects.one("RoleBinding", "ferry-leader-election", RELEASE_NAMESPACE)["subjects"][0]["name"] == "ferry"


def test_namespaced_install_has_nothing_cluster_wide(render):
    objects = render({**BUCKET, "namespaced": True, "workflowNamespaces": ["team-a", "team-b"]})
    assert not objects.of("ClusterRole") and not objects.of("ClusterRoleBinding")
    for namespace in ("team-a", "team-b"):
        assert objects.one("Role", "ferry-operator", namespace)["rules"] == OPERATOR_RULES
        binding = objects.one("RoleBinding", "ferry-operator", namespace)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ferry", "namespace": RELEASE_NAMESPACE}]
        assert binding["roleRef"]["kind"] == "Role"
        assert objects.one("ServiceAccount", "ferry-task", namespace)["automountServiceAccountToken"] is False
    args = operator_container(objects)["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    assert "--all-namespaces" not in args


def test_namespaced_install_defaults_to_the_release_namespace(render):
    objects = render({**BUCKET, "namespaced": True})
    assert objects.one("Role", "ferry-operator")["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert f"--namespace={RELEASE_NAMESPACE}" in operator_container(objects)["args"]


def test_operator_deployment(render):
    objects = render(BUCKET)
    deployment = objects.one("Deployment", "ferry-operator")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "ferry" and pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(objects)
    assert container["command"] == ["ferry-operator"]
    assert container["envFrom"] == [{"configMapRef": {"name": "ferry-operator"}}]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True and security["capabilities"] == {"drop": ["ALL"]}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # The probe asks the endpoint the operator serves (--liveness), on the port it names.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"] and ports["liveness"] == 8080
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert "--metrics-port=9090" in container["args"] and ports["metrics"] == 9090
    service = objects.one("Service", "ferry-metrics")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    selector = spec["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector == {k: v for k, v in pod_labels(deployment).items() if k in selector}


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


UI_RULES = [
    {"apiGroups": ["ferry.dev"], "resources": ["workflows"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]


def test_the_ui_is_off_by_default(render):
    assert not [o for o in render(BUCKET) if "-ui" in o["metadata"]["name"]]


def test_the_ui_reads_with_its_own_account_and_nothing_more(render):
    objects = render({**BUCKET, "storage": {"bucket": "ferry-data", "existingSecret": "store-keys",
                                            "endpoint": "http://minio:9000"}, "ui": {"enabled": True}})
    assert objects.one("ServiceAccount", "ferry-ui")
    assert objects.one("ClusterRole", f"{RELEASE_NAMESPACE}-ferry-ui")["rules"] == UI_RULES
    binding = objects.one("ClusterRoleBinding", f"{RELEASE_NAMESPACE}-ferry-ui")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ferry-ui", "namespace": RELEASE_NAMESPACE}]
    pod = objects.one("Deployment", "ferry-ui")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ferry-ui" and pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["args"][:2] == ["ui", "--cluster-only"] and "--host=0.0.0.0" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"] == [{"secretRef": {"name": "store-keys", "optional": True}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"FERRY_RAW_DATA_PREFIX": "s3://ferry-data/ferry", "FERRY_S3_ENDPOINT_URL": "http://minio:9000"}
    assert objects.one("Service", "ferry-ui")["spec"]["type"] == "ClusterIP"


def test_a_namespaced_ui_reads_only_the_workflow_namespaces(render):
    objects = render({**BUCKET, "namespaced": True, "workflowNamespaces": ["team-a", "team-b"],
                      "ui": {"enabled": True, "readOutputs": False}})
    assert not [o for o in objects.of("ClusterRole") if "-ui" in o["metadata"]["name"]]
    for namespace in ("team-a", "team-b"):
        assert objects.one("Role", "ferry-ui", namespace)["rules"] == UI_RULES
    container = objects.one("Deployment", "ferry-ui")["spec"]["template"]["spec"]["containers"][0]
    assert [a for a in container["args"] if a.startswith("--namespace")] == ["--namespace=team-a",
                                                                             "--namespace=team-b"]
    assert "envFrom" not in container and not container.get("env")


def test_the_ui_answers_the_host_names_it_is_given_besides_loopback(render):
    """Without them a Host other than loopback's is refused (DNS rebinding); an Ingress's name is named here."""
    def args(ui: dict) -> list[str]:
        deployment = render({**BUCKET, "ui": {"enabled": True, **ui}}).one("Deployment", "ferry-ui")
        return deployment["spec"]["template"]["spec"]["containers"][0]["args"]

    assert not [a for a in args({}) if a.startswith("--allow-host")]
    assert [a for a in args({"allowedHosts": ["ferry.example.com", "[fd00::1]"]}) if a.startswith("--allow-host")] \
        == ["--allow-host=ferry.example.com", "--allow-host=[fd00::1]"]


def test_changing_the_configuration_rolls_the_operator(render):
    before = render(BUCKET).one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    after = render({"storage": {"bucket": "ferry-data", "prefix": "other"}}).one("Deployment")
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != before


def test_metrics_off(render):
    objects = render({**BUCKET, "metrics": {"enabled": False}})
    assert not objects.of("Service")
    container = operator_container(objects)
    assert "--metrics-port=0" in container["args"] and [p["name"] for p in container["ports"]] == ["liveness"]


def test_service_monitor(render):
    objects = render({**BUCKET, "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    monitor = objects.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == objects.one("Service")["spec"]["selector"]


# -- storage configuration, as the operator and the runtime read it -------------------------------

def test_storage_configuration_is_what_the_operator_and_runtime_accept(render):
    objects = render({"storage": {"bucket": "ferry-data", "prefix": "/runs/", "endpoint": "https://s3.example:9000",
                                  "region": "eu-west-1", "addressingStyle": "path", "existingSecret": "ferry-storage",
                                  "extraEnv": {"FERRY_CONCURRENCY": 64}}})
    data = operator_config(objects)
    config = Config.from_env(data)  # the operator starts with exactly this environment
    assert config.raw_data_prefix == "s3://ferry-data/runs"
    assert config.storage_secret == "ferry-storage"
    assert config.task_service_account == "ferry-task"
    assert config.upload_grace_seconds == 600 and config.start_timeout_seconds == 300
    assert config.runtime_resources.dump() == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}
    assert config.storage_env == {"FERRY_S3_ENDPOINT_URL": "https://s3.example:9000", "FERRY_S3_REGION": "eu-west-1",
                                  "FERRY_S3_ADDRESSING_STYLE": "path", "FERRY_CONCURRENCY": "64"}
    settings = ferry.Settings.from_env(config.storage_env)  # ... and the runtime in task pods reads this
    assert (settings.s3_endpoint_url, settings.s3_region, settings.s3_addressing_style, settings.concurrency) == (
        "https://s3.example:9000", "eu-west-1", "path", 64)
    # Nothing about storage is in the operator's own environment but what it passes on.
    assert set(data) == {"FERRY_OPERATOR_" + n for n in ("RAW_DATA_PREFIX", "RUNTIME_IMAGE", "STORAGE_ENV",
                                                          "STORAGE_SECRET", "TASK_SERVICE_ACCOUNT",
                                                          "UPLOAD_GRACE_SECONDS", "START_TIMEOUT_SECONDS",
                                                          "TASK_EVENTS", "MAP_PARALLELISM", "RUNTIME_RESOURCES",
                                                          "SCOPED_CREDENTIALS", "NAMESPACES")}
    assert config.scoped_credentials is True and config.namespaces == {} and config.task_events is False
    assert config.map_parallelism == 100
    assert config.ttl_seconds_after_finished is None  # finished workflows stay unless asked


@pytest.mark.parametrize("ttl", [0, 86400])
def test_a_default_ttl_reaches_the_operator(render, ttl: int):
    config = Config.from_env(operator_config(render({**BUCKET, "operator": {"ttlSecondsAfterFinished": ttl}})))
    assert config.ttl_seconds_after_finished == ttl


def test_namespaces_can_have_their_own_bucket_prefix_and_keys(render):
    role_arn = "arn:aws:iam::123456789012:role/ferry-tasks"
    objects = render({"storage": {"bucket": "shared", "existingSecret": "keys", "roleArn": role_arn, "namespaces": {
        "team-a": {"bucket": "team-a-data", "prefix": "/ferry/", "existingSecret": "team-a-keys"},
        "team-b": {"prefix": "b"}, "team-c": {"existingSecret": "c-keys"}}}})
    config = Config.from_env(operator_config(objects))
    assert (config.namespace_root("team-a"), config.namespace_secret("team-a")) == ("s3://team-a-data/ferry", "team-a-keys")
    assert (config.namespace_root("team-b"), config.namespace_secret("team-b")) == ("s3://shared/b", "keys")
    assert (config.namespace_root("team-c"), config.namespace_secret("team-c")) == ("s3://shared/ferry/team-c", "c-keys")
    assert config.namespace_root("other") == "s3://shared/ferry/other"
    assert ferry.Settings.from_env(config.storage_env).s3_role_arn == role_arn
    off = Config.from_env(operator_config(render({**BUCKET, "storage": {**BUCKET["storage"], "scopedCredentials": False}})))
    assert off.scoped_credentials is False


def test_workload_identity_needs_no_secret(render):
    role_arn = "arn:aws:iam::123456789012:role/ferry-tasks"
    objects = render({**BUCKET, "taskServiceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role_arn}}})
    account = objects.one("ServiceAccount", "ferry-task")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role_arn}
    assert account["automountServiceAccountToken"] is False
    assert "FERRY_OPERATOR_STORAGE_SECRET" not in operator_config(objects)
    assert Config.from_env(operator_config(objects)).storage_env == {}


def test_task_pods_can_use_the_namespace_default_account(render):
    objects = render({**BUCKET, "taskServiceAccount": {"create": False}})
    assert [a["metadata"]["name"] for a in objects.of("ServiceAccount")] == ["ferry"]
    assert "FERRY_OPERATOR_TASK_SERVICE_ACCOUNT" not in operator_config(objects)


def test_dev_object_store(render):
    objects = render({"devObjectStore": {"enabled": True}, "namespaced": True, "workflowNamespaces": ["team-a"]})
    store = objects.one("Deployment", "ferry-objectstore")
    container = store["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("quay.io/minio/minio:RELEASE.")
    assert 'mkdir -p "/data/ferry"' in container["args"][0]
    assert objects.one("Service", "ferry-objectstore")["spec"]["ports"][0]["port"] == 9000
    # Its credentials are in the release namespace (for MinIO) and in each workflow namespace (for task pods).
    secrets = objects.of("Secret", "ferry-objectstore")
    assert {s["metadata"]["namespace"] for s in secrets} == {RELEASE_NAMESPACE, "team-a"}
    assert len({s["stringData"]["AWS_SECRET_ACCESS_KEY"] for s in secrets}) == 1
    config = Config.from_env(operator_config(objects))
    assert config.raw_data_prefix == "s3://ferry/ferry"
    assert config.storage_secret == "ferry-objectstore"
    assert config.storage_env == {"FERRY_S3_ENDPOINT_URL": f"http://ferry-objectstore.{RELEASE_NAMESPACE}.svc:9000",
                                  "FERRY_S3_ADDRESSING_STYLE": "path"}


def test_names_follow_the_release(render):
    objects = render(BUCKET, release="prod")
    assert objects.one("Deployment")["metadata"]["name"] == "prod-ferry-operator"
    assert objects.one("ClusterRole")["metadata"]["name"] == f"{RELEASE_NAMESPACE}-prod-ferry-operator"


# -- wrong values fail with a message --------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    ({}, "storage.bucket is required"),
    ({"storage": {"bucket": "Bad_Bucket"}}, "at '/storage/bucket'"),
    ({**BUCKET, "operator": {"replicas": 6}}, "at '/operator/replicas'"),
    ({**BUCKET, "operator": {"ttlSecondsAfterFinished": -1}}, "at '/operator/ttlSecondsAfterFinished'"),
    ({**BUCKET, "operator": {"ttlSecondsAfterFinished": "1d"}}, "at '/operator/ttlSecondsAfterFinished'"),
    ({"storage": {"bucket": "ferry-data", "bukcet": "typo"}}, "additional properties 'bukcet' not allowed"),
    ({"storage": {"bucket": "ferry-data", "addressingStyle": "subdomain"}}, "at '/storage/addressingStyle'"),
    ({"storage": {"bucket": "ferry-data", "endpoint": "minio:9000"}}, "at '/storage/endpoint'"),
    ({**BUCKET, "namespaced": "yes"}, "at '/namespaced'"),
    ({**BUCKET, "workflowNamespaces": ["Team_A"]}, "at '/workflowNamespaces/0'"),
    ({**BUCKET, "metrics": {"port": "9090"}}, "at '/metrics/port'"),
    ({**BUCKET, "image": {"repository": "ferry", "digest": "latest"}}, "at '/image/digest'"),
    ({**BUCKET, "metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, "needs metrics.enabled=true"),
    ({**BUCKET, "metrics": {"port": 8080}}, "metrics.port and operator.livenessPort are both 8080"),
    ({"devObjectStore": {"enabled": True}, "storage": {"existingSecret": "mine"}}, "cannot be combined"),
    ({"storage": {"bucket": "ferry-data", "namespaces": {"Team": {}}}}, "invalid propertyName 'Team'"),
    ({"storage": {"bucket": "ferry-data", "namespaces": {"t": {"bukcet": "x"}}}}, "at '/storage/namespaces/t'"),
    ({"storage": {"bucket": "ferry-data", "roleArn": "my-role"}}, "at '/storage/roleArn'"),
    # A name that would add an argument of its own to the UI's command line.
    ({**BUCKET, "ui": {"enabled": True, "allowedHosts": ["x, --host=0.0.0.0"]}}, "at '/ui/allowedHosts/0'"),
    ({**BUCKET, "ui": {"enabled": True, "allowedHosts": ["evil.example]"]}}, "at '/ui/allowedHosts/0'"),
])
def test_wrong_values_fail_with_a_message(helm: Helm, tmp_path: pathlib.Path, values: dict, message: str):
    result = template(helm, tmp_path, values)
    assert result.returncode != 0, f"helm accepted {values}"
    assert message in result.stderr, result.stderr


def test_schema_is_valid_json_that_describes_every_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value, node, path):
        assert node is not None, f"{path} is in values.yaml but not in values.schema.json"
        if isinstance(value, dict) and node.get("type") == "object" and "properties" in node:
            for key, child in value.items():
                walk(child, node["properties"].get(key), f"{path}.{key}")

    walk(values, schema, "")
