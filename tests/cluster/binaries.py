"""Build the test cluster's binaries from their Go modules, once, and cache them.

No registry here ships kube-apiserver, so it is compiled with the installed Go. Kubernetes' own
go.mod replaces its staging modules (``k8s.io/api``, ``k8s.io/apiserver``...) with local folders,
which is why ``go install k8s.io/kubernetes/cmd/...@v`` cannot work. We write a small module
that requires ``k8s.io/kubernetes`` and points every staging module at its published
``v0.Y.Z`` release instead, then build from it. MinIO and Helm have no such replaces and are
built with plain ``go install``.

Binaries land in ``$FERRY_CACHE_DIR`` (default ``~/.cache/ferry``) under ``bin/<name>-<version>``
and are reused by every later run. Run ``python -m tests.cluster.binaries`` to build them ahead.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from tests.cluster import versions


def cache_dir() -> pathlib.Path:
    root = os.environ.get("FERRY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ferry"
    )
    return pathlib.Path(root)


def _bin_dir(tag: str) -> pathlib.Path:
    return cache_dir() / "bin" / tag


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    # Kubernetes pins an older toolchain in go.mod; building with the installed one is fine
    # and keeps the build offline from anything but the module proxy.
    env["GOTOOLCHAIN"] = "local"
    env["GOFLAGS"] = "-buildvcs=false"
    return env


def _run(cmd: list[str], cwd: pathlib.Path | None = None, env: dict | None = None) -> str:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    result = subprocess.run(cmd, cwd=cwd, env=env or _go_env(), text=True, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _publish(built: pathlib.Path, final: pathlib.Path) -> None:
    """Move a finished binary into place atomically, so a killed build never looks cached."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".partial")
    shutil.copy2(built, partial)
    os.replace(partial, final)


def kubernetes_gomod(version: str, kubernetes_mod: str) -> str:
    """The go.mod of the tools module: k8s.io/kubernetes with staging modules un-replaced.

    ``kubernetes_mod`` is the text of Kubernetes' own go.mod at ``version``; every
    ``k8s.io/x => ./staging/src/k8s.io/x`` line there becomes ``k8s.io/x => k8s.io/x v0.Y.Z``.
    """
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_mod, re.M)))
    staging_version = "v0" + version[version.index(".") :]
    go_line = re.search(r"^go (\S+)$", kubernetes_mod, re.M)
    lines = [
        "module ferry.dev/testcluster",
        "",
        f"go {go_line.group(1) if go_line else '1.24.0'}",
        "",
        f"require k8s.io/kubernetes {version}",
        "",
    ]
    lines += [f"replace {mod} => {mod} {staging_version}" for mod in staging]
    return "\n".join(lines) + "\n"


KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")
NODE_COMMANDS = ("kubelet", "kube-scheduler", "kube-proxy")
"""The real node's part of Kubernetes (``realnode.py``), built only when a run uses that node."""

_TOOLS_GO = """//go:build tools

// Package tools pins what the test cluster builds, so 'go mod tidy' resolves their deps.
package tools

import (
	_ "k8s.io/component-base/cli"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
"""

_ETCD_MAIN_GO = """// Command etcd is etcd's own main, built at the version Kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


def _version_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def build_kubernetes(version: str = versions.KUBERNETES, commands: tuple[str, ...] = KUBERNETES_COMMANDS
                     ) -> pathlib.Path:
    """Build ``commands`` (by default kube-apiserver, kube-controller-manager and kubectl) and the
    matching etcd into one folder; each binary is published on its own, so adding a command later
    builds only that one."""
    target = _bin_dir(f"kubernetes-{version}")
    missing = [name for name in (*commands, "etcd") if not (target / name).exists()]
    if not missing:
        return target
    with tempfile.TemporaryDirectory(prefix="ferry-k8s-build-") as tmp:
        module = pathlib.Path(tmp)
        info = json.loads(_run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"], cwd=module))
        gomod = kubernetes_gomod(version, pathlib.Path(info["GoMod"]).read_text())
        (module / "go.mod").write_text(gomod)
        (module / "tools.go").write_text(_TOOLS_GO)
        (module / "etcd").mkdir()
        (module / "etcd" / "main.go").write_text(_ETCD_MAIN_GO)
        _run(["go", "mod", "tidy"], cwd=module)
        out = module / "out"
        for name in missing:
            if name == "etcd":
                _run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / name), "./etcd"], cwd=module)
            else:
                _run(["go", "build", "-trimpath", "-ldflags", _version_ldflags(version), "-o", str(out / name),
                      f"k8s.io/kubernetes/cmd/{name}"], cwd=module)
            _publish(out / name, target / name)
    return target


def build_node(version: str = versions.KUBERNETES) -> pathlib.Path:
    """The control plane's binaries and the real node's: kubelet, kube-scheduler, kube-proxy."""
    return build_kubernetes(version, KUBERNETES_COMMANDS + NODE_COMMANDS)


def _go_install(module: str, version: str, name: str, ldflags: str = "-s -w") -> pathlib.Path:
    target = _bin_dir(f"{name}-{version}")
    binary = target / name
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory(prefix=f"ferry-{name}-build-") as tmp:
        env = _go_env() | {"GOBIN": tmp}
        _run(["go", "install", "-trimpath", "-ldflags", ldflags, f"{module}@{version}"], env=env)
        target.mkdir(parents=True, exist_ok=True)
        _publish(pathlib.Path(tmp) / name, binary)
    return binary


def build_minio(version: str = versions.MINIO) -> pathlib.Path:
    return _go_install("github.com/minio/minio", version, "minio")


def build_helm(version: str = versions.HELM) -> pathlib.Path:
    ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={version}"
    return _go_install("helm.sh/helm/v3/cmd/helm", version, "helm", ldflags)


def build_coredns(version: str = versions.COREDNS) -> pathlib.Path:
    return _go_install("github.com/coredns/coredns", version, "coredns")


def build_kwok(version: str = versions.KWOK) -> pathlib.Path:
    return _go_install("sigs.k8s.io/kwok/cmd/kwok", version, "kwok", f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={version.lstrip('v')}")


def main(argv: list[str]) -> None:
    """Build (or find cached) everything; print where each binary is."""
    wanted = set(argv) or {"kubernetes", "minio", "helm"}
    if "kubernetes" in wanted:
        print(build_kubernetes())
    if "minio" in wanted:
        print(build_minio())
    if "helm" in wanted:
        print(build_helm())


if __name__ == "__main__":
    main(sys.argv[1:])
