"""The image the chart deploys (``Dockerfile``). No Docker engine is needed: the Dockerfile is
read here, its build stage's RUN lines are run as written (in temporary folders instead of the
image's), and the environment they make is started through the image's two entrypoints. The
test node runs the ``ferry`` image the way this Dockerfile defines it (``tests/cluster/images.py``),
and the chart starts the operator with a command this image has."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.cluster import images
from tests.cluster.fixtures import REPO

DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGE_BUDGET_MB = 260
"""What the final stage adds to the base image (the virtual environment); it was 199 MB, most of
it the kubernetes client (126 MB)."""


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


@pytest.mark.timeout(900)
def test_build_stage_makes_an_environment_that_runs_both_entrypoints(tmp_path):
    """Run the build stage's RUN lines as written; needs the package index (pip), like docker build."""
    src = tmp_path / "src"
    src.mkdir()
    for args in BUILD.all("COPY"):
        *sources, _ = args.split()
        for source in sources:
            origin = REPO / source
            if origin.is_dir():
                shutil.copytree(origin, src / source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy(origin, src / source)
    venv, wheels = tmp_path / "venv", tmp_path / "wheels"
    defaults = stage_args(BUILD)
    assert set(defaults) == {"WHEELS", "VENV"}
    env = {**os.environ, "WHEELS": str(wheels), "VENV": str(venv),
           # `pip` and `python` of the base image: here, those of the environment running the tests.
           "PATH": f"{os.path.join(sys.prefix, 'bin')}:{os.environ['PATH']}"}
    for command in BUILD.all("RUN"):
        result = subprocess.run(["sh", "-c", command], cwd=src, env=env, capture_output=True, text=True, timeout=800)
        assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    def run(*argv: str) -> str:
        result = subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=120,
                                env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                                     "PYTHONDONTWRITEBYTECODE": "1"}, cwd=tmp_path)
        assert result.returncode == 0, f"{shlex.join(argv)}: {result.stderr}"
        return result.stdout

    assert run("ferry", "--version").split() == ["ferry", PYPROJECT["project"]["version"]]
    assert "--namespace" in run("ferry-operator", "--help")
    assert run("python", "-c", "import ferry_operator.handlers, ferry.podruntime, sys; print(sys.prefix)").strip() == str(venv)
    assert not (venv / "bin" / "pip").exists(), "no pip in the image's environment"
    size_mb = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 2**20
    print(f"\nimage environment: {size_mb:.0f} MB on top of {ARGS['PYTHON_IMAGE']}", file=sys.stderr)
    assert size_mb < IMAGE_BUDGET_MB
