"""A task pod's start-up, in the image built from the Dockerfile: a no-op Python task, end to end.

The main container of a Python task's pod runs ``ferry pod run-function``: Python starts, imports
the runtime, reads its plan, imports the task's module, calls the function and writes the result.
This times that command in the real image (``tests/cluster/node_images.py`` builds it with
buildah, as the suite's real node runs it), its layers unpacked into a folder and run there with
``chroot``: no container runtime in the figures, which are the pod's own process. Beside it, in
the same run and the same image: ``python -c pass`` (the interpreter alone) and
``python -c "import ferry.pod.runner"`` (the runtime's imports), so the remainder is Ferry's own work.

    sudo .venv/bin/python benchmarks/pod_startup.py --runs 20

Root is needed for ``chroot``. The plan names a module on ``PYTHONPATH`` (no code archive) and a
local raw data folder, so nothing but the start-up is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster import node_images  # noqa: E402

TASK = '''import ferry


@ferry.task
def step(x: int) -> int:
    return x + 1
'''
WORK = "/tmp/pod-startup"
PLAN = {"workflow": "w", "namespace": "default", "executionId": "e1", "task": "step", "attempt": 0,
        "function": "noop_task:step", "values": {"x": 1}, "outputs": [{"name": "o0", "kind": "value"}],
        "outputPrefix": f"file://{WORK}/raw/e1/step/0"}


def unpack(archive: pathlib.Path, rootfs: pathlib.Path) -> None:
    """The image's layers, in order, into ``rootfs`` (whiteouts applied)."""
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json"))
        blob = lambda digest: outer.extractfile(f"blobs/sha256/{digest.split(':')[1]}")  # noqa: E731
        manifest = json.load(blob(index["manifests"][0]["digest"]))
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=blob(layer["digest"]), mode="r:*") as tar:
                for member in tar:
                    folder, name = os.path.split(member.name)
                    if name == ".wh..wh..opq":
                        shutil.rmtree(rootfs / folder, ignore_errors=True)
                        (rootfs / folder).mkdir(parents=True, exist_ok=True)
                    elif name.startswith(".wh."):
                        target = rootfs / folder / name.removeprefix(".wh.")
                        if target.is_dir() and not target.is_symlink():
                            shutil.rmtree(target)
                        else:
                            target.unlink(missing_ok=True)
                    else:
                        tar.extract(member, rootfs, filter="tar")


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("chroot needs root: run it as root (sudo)")
    archive = next(path for path in node_images.build_all() if path.name.startswith("ferry-"))
    with tempfile.TemporaryDirectory(prefix="ferry-pod-startup-") as scratch:
        rootfs = pathlib.Path(scratch)
        rootfs.chmod(0o755)  # mkdtemp makes it 0700: the image's user must enter it
        unpack(archive, rootfs)
        (rootfs / "tmp").chmod(0o1777)  # a pod's /tmp is an emptyDir the image's user writes to
        work = rootfs / WORK.lstrip("/")
        work.mkdir(parents=True)
        (work / "noop_task.py").write_text(TASK)
        env = {"PATH": "/opt/ferry/bin:/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": WORK, "FERRY_POD_PLAN": json.dumps(PLAN), "FERRY_RAW_DATA_PREFIX": f"file://{WORK}/raw",
               "FERRY_TERMINATION_LOG": f"{WORK}/result.json", "FERRY_WORKDIR": f"{WORK}/work"}
        chroot = [shutil.which("chroot") or "/usr/sbin/chroot", "--userspec=10001:10001", str(rootfs)]
        os.chown(work, 10001, 10001)
        commands = {
            "ferry pod run-function (a no-op task)": [*chroot, "ferry", "pod", "run-function"],
            "python -c 'import ferry.pod.runner'": [*chroot, "python", "-c", "import ferry.pod.runner"],
            "python -c pass": [*chroot, "python", "-c", "pass"],
        }
        timed(commands["ferry pod run-function (a no-op task)"], env)  # warm the page cache
        result = json.loads((work / "result.json").read_text())
        assert result["outputs"]["o0"]["value"] == 2, result
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # in turn, so a slower minute slows all three alike
            for name, command in commands.items():
                samples[name].append(timed(command, env))
    print(f"{archive.name}, {args.runs} runs each, in turn; median (min-max):")
    for name, times in samples.items():
        print(f"  {name:40s} {statistics.median(times) * 1000:6.0f} ms "
              f"({min(times) * 1000:.0f}-{max(times) * 1000:.0f})")


if __name__ == "__main__":
    main()
