"""The image the chart deploys (``Dockerfile``): its stages, user and entrypoints as written, and
the image built from it unchanged (``tests/cluster/node_images.py``, with buildah: no Docker
engine is needed) run on the suite's real node as the chart runs it. The emulated test node
stands in for this image with the same entrypoints (``tests/cluster/images.py``)."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from kubernetes import client

from tests.cluster import images
from tests.cluster.fixtures import REPO, Cluster, eventually

DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base, name or None, []))
        elif not stages and keyword == "ARG":
            key, _, value = args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text())
BUILD, FINAL = STAGES[0], STAGES[-1]


def stage_args(stage: Stage) -> dict[str, str]:
    return dict(a.partition("=")[::2] for a in stage.all("ARG"))


def test_two_stages_on_one_pinned_base():
    assert len(STAGES) == 2 and BUILD.name == "build"
    assert BUILD.base == FINAL.base == "${PYTHON_IMAGE}"
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-(\w+)(@sha256:[0-9a-f]{64})?", ARGS["PYTHON_IMAGE"])
    assert match, f"pin the base to a full version: {ARGS['PYTHON_IMAGE']}"
    assert f"{match[1]}.{match[2]}.{match[3]}" in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_final_stage_runs_as_a_non_root_user_without_build_tools():
    user = FINAL.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0), "a numeric uid lets runAsNonRoot verify it"
    values = yaml.safe_load((REPO / "helm" / "ferry" / "values.yaml").read_text())
    assert values["operator"]["podSecurityContext"]["runAsUser"] == int(uid)
    final_runs = " ".join(FINAL.all("RUN"))
    assert not re.search(r"apt-get install|apk add|pip install|gcc|build-essential", final_runs)
    assert "pip uninstall" in final_runs
    copies = FINAL.all("COPY")
    venv = stage_args(BUILD)["VENV"]
    assert copies == [f"--from=build {venv} {venv}"], "the final stage takes only the built environment"
    env = " ".join(FINAL.all("ENV"))
    assert f"PATH={venv}/bin:" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def test_entrypoints_are_the_package_scripts_and_what_the_test_node_runs():
    entrypoint = json.loads(FINAL.all("ENTRYPOINT")[-1])
    assert not FINAL.all("CMD")
    scripts = PYPROJECT["project"]["scripts"]
    assert entrypoint == ["ferry"] and "ferry" in scripts and "ferry-operator" in scripts
    # tests/cluster/images.py stands in for this image on the test node: same ENTRYPOINT and CMD.
    on_test_node = images.resolve("ghcr.io/ferry-dev/ferry:1.0")
    assert list(on_test_node.entrypoint) == entrypoint and on_test_node.cmd == ()
    deployment = (REPO / "helm" / "ferry" / "templates" / "deployment.yaml").read_text()
    assert "command: [ferry-operator]" in deployment


def test_build_context_is_only_what_the_build_copies():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "*", ".dockerignore starts by excluding everything"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {part for args in BUILD.all("COPY") for part in args.split()[:-1]}
    assert copied == allowed


@pytest.mark.cluster
def test_the_built_image_runs_both_entrypoints_as_its_user(cluster: Cluster, namespace: str):
    """The image built from this Dockerfile (``tests/cluster/node_images.py``), run by the real node
    as the chart runs it: its own non-root user, read-only root filesystem, /tmp an emptyDir. Its
    compiled modules are valid whatever the layers did to file times: Python never compiles a
    module again at start (it cannot write the cache there, so every pod would pay for it)."""
    if not cluster.local or cluster.emulated:
        pytest.skip("needs the image built from the Dockerfile: the suite's real node has it")
    script = " && ".join([
        "id -u", "ferry --version", "ferry-operator --help | grep -c -- --namespace",
        "python -c 'import ferry_operator.handlers, ferry.pod.podruntime, ferry_ui.app, sys; print(sys.prefix)'",
        "test -x /usr/bin/test && echo test-binary", "(python -m pip --version >/dev/null 2>&1 || echo no-pip)",
        "(python -v -c 'import ferry.pod.runner, ferry.cli, ferry_operator.handlers, ferry_ui.app' 2>&1 "
        "| grep -c 'bytecode is stale' || true)"])
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "image"},
        "spec": {"restartPolicy": "Never", "volumes": [{"name": "tmp", "emptyDir": {}}],
                 "containers": [{"name": "ferry", "image": "ferry:dev", "command": ["sh", "-c", script],
                                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                                 "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                                     "allowPrivilegeEscalation": False,
                                                     "capabilities": {"drop": ["ALL"]}}}]}}))
    core = client.CoreV1Api(cluster.api_client())
    phase = eventually(lambda: core.read_namespaced_pod("image", namespace).status.phase in ("Succeeded", "Failed")
                       and core.read_namespaced_pod("image", namespace).status.phase, 120, what="the pod to finish")
    logs = core.read_namespaced_pod_log("image", namespace)
    assert phase == "Succeeded", logs
    uid = FINAL.all("USER")[-1].partition(":")[0]
    assert logs.split() == [uid, "ferry", PYPROJECT["project"]["version"], "1", stage_args(BUILD)["VENV"],
                            "test-binary", "no-pip", "0"]
