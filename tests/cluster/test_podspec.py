"""The test node's pure pieces: reading pod specs and writing pod status."""

import pytest

from tests.cluster import images, podspec
from tests.cluster.binaries import kubernetes_gomod

SHELL = images.resolve("busybox:1.36")
POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "n", "serviceAccountName": "sa"}, "status": {}}


def test_expand_replaces_known_variables_and_keeps_the_rest():
    env = {"A": "1"}
    assert podspec.expand("$(A)-$(B)-$$(A)", env) == "1-$(B)-$(A)"


def test_command_replaces_entrypoint_and_drops_cmd():
    ferry = images.resolve("ghcr.io/org/ferry:0.1")
    assert podspec.container_argv({"args": ["run"]}, ferry, {}) == ["ferry", "run"]
    assert podspec.container_argv({"command": ["echo"]}, SHELL, {}) == ["echo"]
    assert podspec.container_argv({}, SHELL, {}) == ["sh"]
    assert podspec.container_argv({"command": ["echo", "$(X)"]}, SHELL, {"X": "y"}) == ["echo", "y"]


def test_env_resolves_references_in_kubelet_order():
    container = {"env": [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)b"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ], "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "C_"}]}
    data = {("secret", "s"): {"k": "v"}, ("configmap", "c"): {"x": "1"}}
    env = podspec.container_env(POD, container, SHELL, {}, lambda kind, name: data.get((kind, name)))
    assert (env["B"], env["POD"], env["APP"], env["KEY"], env["C_x"]) == ("ab", "p", "x", "v", "1")


def test_missing_secret_is_a_config_error_unless_optional():
    ref = {"name": "K", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}
    with pytest.raises(podspec.ConfigError, match="gone"):
        podspec.container_env(POD, {"env": [ref]}, SHELL, {}, lambda kind, name: None)
    ref["valueFrom"]["secretKeyRef"]["optional"] = True
    assert "K" not in podspec.container_env(POD, {"env": [ref]}, SHELL, {}, lambda kind, name: None)


def test_phase_follows_restart_policy():
    ok = podspec.terminated({"name": "a"}, 0, "t")
    bad = podspec.terminated({"name": "b"}, 2, "t")
    live = podspec.running({"name": "c"}, "t")
    assert podspec.phase("Never", [ok, ok]) == "Succeeded"
    assert podspec.phase("Never", [ok, bad]) == "Failed"
    assert podspec.phase("OnFailure", [ok, bad]) == "Running"
    assert podspec.phase("Never", [ok, live]) == "Running"
    assert bad["state"]["terminated"]["reason"] == "Error"


def test_signal_deaths_become_128_plus_signal():
    assert podspec.exit_code_of(-15) == 143
    assert podspec.exit_code_of(3) == 3


def test_image_table_knows_repositories_not_tags():
    assert images.repository_name("ghcr.io/a/ferry:1.0@sha256:abc") == "ferry"
    assert images.resolve("registry.invalid/nothing:1") is None


def test_tools_module_unreplaces_every_staging_module():
    upstream = "module k8s.io/kubernetes\n\ngo 1.24.0\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n" \
               "\tk8s.io/apiserver => ./staging/src/k8s.io/apiserver\n)\n"
    gomod = kubernetes_gomod("v1.34.4", upstream)
    assert "require k8s.io/kubernetes v1.34.4" in gomod
    assert "replace k8s.io/api => k8s.io/api v0.34.4" in gomod
    assert "replace k8s.io/apiserver => k8s.io/apiserver v0.34.4" in gomod
    assert "go 1.24.0" in gomod


def test_a_volume_over_the_host_python_puts_it_back_on_top(tmp_path):
    from tests.cluster.node import KEEP_STAGE, mounting_launcher

    script = mounting_launcher([(str(tmp_path / "empty"), "/tmp", False)], "/", keep=("/tmp/checkout/.venv",))[-2]
    lines = script.splitlines()
    aside = lines.index(f"mkdir -p {KEEP_STAGE}/0; mount --bind /tmp/checkout/.venv {KEEP_STAGE}/0")
    over = next(i for i, line in enumerate(lines) if line.endswith(" /tmp") and "mount --bind" in line)
    back = lines.index(f"mkdir -p /tmp/checkout/.venv; mount --bind {KEEP_STAGE}/0 /tmp/checkout/.venv")
    assert aside < over < back
