"""Build the container images the real node (``realnode.py``) runs, with no image registry.

No image registry is reachable from these machines (only Debian's apt mirrors and PyPI are), so
containerd cannot pull anything, not even the pod sandbox's pause image. Each image is built here
with buildah from what those registries and this repository hold, exported as an OCI archive and
imported into containerd under the name a pod spec uses, so nothing is ever pulled:

- ``registry.k8s.io/pause:3.10``: a small static C program (containerd's ``sandbox_image``);
- ``docker.io/library/busybox:1.36``: Debian's busybox-static and its applet links;
- ``localhost/ferry-test/python-base:bookworm``: Debian's Python 3.11 made with ``mmdebstrap``,
  set up to behave like ``python:3.11-slim`` for the project's Dockerfile;
- ``docker.io/library/ferry:dev``: the project's own ``Dockerfile``, unchanged, on that base;
- ``quay.io/minio/minio:<the chart's tag>``: the MinIO the suite builds, on busybox, for the
  chart's dev object store.

Archives are cached in ``$FERRY_CACHE_DIR/images`` under a key that hashes everything that went
into them (sources, recipe, parent image), and appear there only once complete: unchanged inputs
are never rebuilt, changed ones always are. buildah keeps its own storage there too, so nothing
depends on ``/var/lib/containers``. Run ``python -m tests.cluster.node_images`` to build them ahead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence

import yaml

from tests.cluster import binaries, versions

REPO = pathlib.Path(__file__).resolve().parents[2]

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
BUSYBOX_IMAGE = "docker.io/library/busybox:1.36"
PYTHON_BASE_IMAGE = f"localhost/ferry-test/python-base:{versions.DEBIAN}"
FERRY_IMAGE = "docker.io/library/ferry:dev"
MINIO_IMAGE = "{repository}:{tag}".format(
    **yaml.safe_load((REPO / "helm" / "ferry" / "values.yaml").read_text())["devObjectStore"]["image"])
"""The image the chart's dev object store runs (``devObjectStore.image`` in its values)."""

PAUSE_C = r"""/* The pod sandbox's process: hold the pod's namespaces, reap orphans, stop on SIGTERM/SIGINT. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) { (void)signo; _exit(0); }

static void reap(int signo) {
    (void)signo;
    while (waitpid(-1, 0, WNOHANG) > 0) {}
}

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = stop;
    sigaction(SIGINT, &action, 0);
    sigaction(SIGTERM, &action, 0);
    action.sa_handler = reap;
    action.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &action, 0);
    for (;;) pause();
}
"""
PAUSE_COMPILE_FLAGS = ("-static", "-Os", "-s")

PAUSE_CONTAINERFILE = """FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
"""

BUSYBOX_BINARY = pathlib.Path("/bin/busybox")
"""Debian's busybox-static (statically linked, so it needs nothing else in the image)."""

BUSYBOX_CONTAINERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY passwd group /etc/
RUN ["/bin/busybox", "mkdir", "-p", "/sbin", "/usr/bin", "/usr/sbin", "/root", "/tmp"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
RUN ["/bin/busybox", "--install", "-s"]
CMD ["sh"]
"""
BUSYBOX_ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "group": "root:x:0:\nnobody:x:65534:\n",
}

PYTHON_BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
"""python3-venv brings the pip and setuptools wheels the base installs pip from; passwd has the
Dockerfile's groupadd/useradd. Not python3-pip: pip cannot uninstall Debian's own copy (it says
"Not uninstalling pip at /usr/lib/python3/dist-packages" and succeeds), so the Dockerfile's final
stage would keep pip, which the official image's pip-installed copy does not."""

PYTHON_BASE_DPKG_OPTIONS = (
    # What Debian's own container images leave out.
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)

PYTHON_BASE_CONTAINERFILE = """FROM scratch
ADD rootfs.tar /
# pip as in python:3.11-slim: installed by pip itself (so it can uninstall it) and free to install
# outside a virtual environment. It uses the system's certificates, as Debian's own pip does.
RUN rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
    && set -- /usr/share/python-wheels/pip-*.whl \\
    && python "$1/pip" install --no-cache-dir --no-index --find-links /usr/share/python-wheels pip setuptools \\
    && printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf
ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python3"]
"""

FERRY_CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "runtime", "operator")
"""What the Ferry image is built from: the Dockerfile, its ignore file and what its COPY lines take."""
FERRY_CONTEXT_IGNORED = ("__pycache__", "*.pyc", "*.egg-info")
"""Left out of the build context by ``.dockerignore``, so left out of the cache key too."""

HOST_CERTIFICATES = pathlib.Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
"""Mounted over the base's bundle while the Ferry image builds (never stored in it), so pip trusts
what the host trusts on the way to PyPI (these machines reach it through an intercepting proxy)."""

MINIO_CONTAINERFILE = f"""FROM {BUSYBOX_IMAGE}
COPY minio /usr/bin/minio
EXPOSE 9000
ENTRYPOINT ["minio"]
"""


@dataclasses.dataclass(frozen=True)
class NodeImage:
    """An image the node runs: its name, the key of what it is built from, and how to build it."""

    name: str
    stem: str
    """The archive's file name before the key."""
    key: str
    prepare_build: Callable[[pathlib.Path], list[str]]
    """Prepares a build context in the given scratch folder; returns ``buildah bud``'s arguments."""
    parent: NodeImage | None = None
    """An image of ours it is built FROM, loaded into buildah's storage from its archive first."""

    @property
    def archive(self) -> pathlib.Path:
        return images_dir() / f"{self.stem}-{self.key[:24]}.tar"


def images_dir() -> pathlib.Path:
    return binaries.cache_dir() / "images"


def digest(*parts: str | bytes) -> str:
    """A sha256 of ``parts`` in order (each length-prefixed, so parts never run into each other)."""
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "big"))
        sha.update(data)
    return sha.hexdigest()


def file_digest(path: pathlib.Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def ferry_context_files(root: pathlib.Path) -> list[pathlib.Path]:
    """The files of ``FERRY_CONTEXT`` under ``root``, without what ``.dockerignore`` leaves out."""
    def ignored(name: str) -> bool:
        return any(pathlib.PurePath(name).match(pattern) for pattern in FERRY_CONTEXT_IGNORED)

    files = []
    for entry in FERRY_CONTEXT:
        path = root / entry
        if not path.is_dir():
            files.append(path)
            continue
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = [name for name in subfolders if not ignored(name)]
            files += [pathlib.Path(folder, name) for name in names if not ignored(name)]
    return sorted(files)


def ferry_context_digest(root: pathlib.Path = REPO) -> str:
    """A hash of every file the Ferry image is built from: its path, mode and content."""
    parts = []
    for path in ferry_context_files(root):
        parts += [str(path.relative_to(root)), oct(path.stat().st_mode & 0o777), file_digest(path)]
    return digest(*parts)


def compile_pause(output: pathlib.Path) -> pathlib.Path:
    """Compile ``PAUSE_C`` into a static binary at ``output``."""
    source = output.with_name(output.name + ".c")
    source.write_text(PAUSE_C)
    _run(["gcc", *PAUSE_COMPILE_FLAGS, "-o", str(output), str(source)])
    return output


def _pause_context(scratch: pathlib.Path) -> list[str]:
    compile_pause(scratch / "pause")
    (scratch / "Containerfile").write_text(PAUSE_CONTAINERFILE)
    return [str(scratch)]


def _busybox_context(scratch: pathlib.Path) -> list[str]:
    shutil.copy2(BUSYBOX_BINARY, scratch / "busybox")
    for name, text in BUSYBOX_ETC.items():
        (scratch / name).write_text(text)
    (scratch / "Containerfile").write_text(BUSYBOX_CONTAINERFILE)
    return [str(scratch)]


def python_base_rootfs_command(target: str) -> list[str]:
    """The ``mmdebstrap`` command that writes the base's root filesystem as a tar to ``target``."""
    return ["mmdebstrap", "--variant=minbase", f"--include={','.join(PYTHON_BASE_PACKAGES)}",
            *(f"--dpkgopt={option}" for option in PYTHON_BASE_DPKG_OPTIONS), versions.DEBIAN, target]


def _python_base_context(scratch: pathlib.Path) -> list[str]:
    rootfs = scratch / "rootfs.tar"
    _run(python_base_rootfs_command(str(rootfs)))
    # mmdebstrap puts device nodes in /dev, which images leave to the runtime.
    _run(["tar", "--wildcards", "--delete", "-f", str(rootfs), "./dev/?*"])
    (scratch / "Containerfile").write_text(PYTHON_BASE_CONTAINERFILE)
    return [str(scratch)]


def _ferry_context(scratch: pathlib.Path) -> list[str]:
    mounts = []
    if HOST_CERTIFICATES.is_file():
        mounts = ["--volume", f"{HOST_CERTIFICATES}:/etc/ssl/certs/ca-certificates.crt:ro"]
    return [*mounts, "--build-arg", f"PYTHON_IMAGE={PYTHON_BASE_IMAGE}", "--file", str(REPO / "Dockerfile"), str(REPO)]


def _minio_context(scratch: pathlib.Path) -> list[str]:
    shutil.copy2(binaries.build_minio(), scratch / "minio")
    (scratch / "Containerfile").write_text(MINIO_CONTAINERFILE)
    return [str(scratch)]


def busybox_image() -> NodeImage:
    """Busybox alone: what tests that run a container outside the cluster need (``build_one``),
    without the keys of the others (MinIO's builds MinIO)."""
    return NodeImage(BUSYBOX_IMAGE, "busybox",
                     digest(file_digest(BUSYBOX_BINARY), json.dumps(BUSYBOX_ETC), BUSYBOX_CONTAINERFILE),
                     _busybox_context)


def node_images() -> list[NodeImage]:
    """Every image the node gets, parents before the images built on them."""
    gcc_version = _run(["gcc", "-dumpfullversion"], quiet=True).strip()
    pause = NodeImage(PAUSE_IMAGE, "pause", digest(PAUSE_C, gcc_version, *PAUSE_COMPILE_FLAGS, PAUSE_CONTAINERFILE),
                      _pause_context)
    busybox = busybox_image()
    python_base = NodeImage(PYTHON_BASE_IMAGE, "python-base",
                            digest(*python_base_rootfs_command("-"), PYTHON_BASE_CONTAINERFILE,
                                   str(versions.PYTHON_BASE_REVISION)),
                            _python_base_context)
    ferry = NodeImage(FERRY_IMAGE, "ferry", digest(python_base.key, PYTHON_BASE_IMAGE, ferry_context_digest()),
                      _ferry_context, parent=python_base)
    minio = NodeImage(MINIO_IMAGE, "minio",
                      digest(busybox.key, file_digest(binaries.build_minio()), MINIO_CONTAINERFILE),
                      _minio_context, parent=busybox)
    return [pause, busybox, python_base, ferry, minio]


def build_all() -> list[pathlib.Path]:
    """Build the archives whose inputs changed; return every image's archive (all complete)."""
    return _build_missing(node_images)


def build_one(image: NodeImage) -> pathlib.Path:
    """``image``'s archive, built if its inputs changed (an image with no parent of ours)."""
    return _build_missing(lambda: [image])[0]


def _build_missing(images_of: Callable[[], list[NodeImage]]) -> list[pathlib.Path]:
    """The archives of ``images_of()`` (parents first), those whose inputs changed built under the
    build lock (``images_of`` is asked under it: working out a key may build, as MinIO's does)."""
    images_dir().mkdir(parents=True, exist_ok=True)
    with _build_lock():
        images = images_of()
        if not all(image.archive.exists() for image in images):
            _remove_leftovers()
            for image in images:
                if not image.archive.exists():
                    _build(image)
            _buildah("rmi", "--prune")
        return [image.archive for image in images]


def archive_image_name(archive: pathlib.Path) -> str:
    """The name an OCI archive of ours carries (``org.opencontainers.image.ref.name``)."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    return index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]


def import_into(ctr_address: str, archives: Sequence[pathlib.Path]) -> None:
    """Import ``archives`` into the containerd at ``ctr_address`` for the kubelet (namespace
    ``k8s.io``) and check each is there under its full name, the one the CRI looks up for
    ``busybox:1.36`` or ``ferry:dev`` (an archive must carry the full name: ctr keeps a short
    one as it is, and prefixes a bare tag with ``import-<date>``)."""
    ctr = ["ctr", "--namespace", "k8s.io", "--address", ctr_address]
    for archive in archives:
        _run([*ctr, "images", "import", str(archive)])
    listed = set(_run([*ctr, "images", "ls", "--quiet"]).split())
    missing = sorted({archive_image_name(archive) for archive in archives} - listed)
    if missing:
        raise RuntimeError(f"containerd at {ctr_address} lacks {', '.join(missing)} after the import; it has: "
                           f"{', '.join(sorted(listed))}")


def _build(image: NodeImage) -> None:
    started = time.monotonic()
    if image.parent:
        # Exactly the parent's archive, whatever buildah's storage held under its name before.
        image_id = _buildah("pull", "--quiet", f"oci-archive:{image.parent.archive}").split()[-1]
        _buildah("tag", image_id, image.parent.name)
    with tempfile.TemporaryDirectory(prefix=f"build-{image.stem}-", dir=images_dir()) as scratch:
        args = image.prepare_build(pathlib.Path(scratch))
        _buildah("bud", "--isolation", "chroot", "--network", "host", "--pull=never", "--tag", image.name, *args)
    partial = image.archive.with_name(image.archive.name + ".partial")
    _buildah("push", "--quiet", image.name, f"oci-archive:{partial}:{image.name}")
    os.replace(partial, image.archive)
    for stale in images_dir().glob(f"{image.stem}-*.tar"):
        if stale != image.archive:
            stale.unlink()
    print(f"built {image.name} in {time.monotonic() - started:.0f}s: {image.archive}", file=sys.stderr, flush=True)


def _remove_leftovers() -> None:
    """What a killed build left: partial archives, scratch folders, buildah's working containers
    (unmounted as they go) and temporary files."""
    for path in images_dir().glob("*.partial"):
        path.unlink()
    _buildah("rm", "--all")
    for path in [*images_dir().glob("build-*"), _buildah_dir() / "tmp"]:
        _remove_unmounted(path)


def _remove_unmounted(path: pathlib.Path) -> None:
    """``rm -rf path``, but never through a mount (that would delete what is mounted there)."""
    with open("/proc/self/mounts") as mounts:
        mounted = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{path}/")]
    if mounted:
        raise RuntimeError(f"a killed build left mounts under {path}; unmount them: {' '.join(mounted)}")
    shutil.rmtree(path, ignore_errors=True)


def _buildah_dir() -> pathlib.Path:
    return images_dir() / "buildah"


def _buildah(*args: str) -> str:
    """Run buildah on its storage in the cache, its large temporary files there too (not /var/tmp)."""
    temporary = _buildah_dir() / "tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    return _run(["buildah", "--root", str(_buildah_dir() / "root"), "--runroot", str(_buildah_dir() / "run"),
                 "--storage-driver", "overlay", *args], env=os.environ | {"TMPDIR": str(temporary)})


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per cache (two test runs may start together)."""
    with (images_dir() / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(cmd: list[str], quiet: bool = False, env: dict[str, str] | None = None) -> str:
    if not quiet:
        print("+", shlex.join(cmd), file=sys.stderr, flush=True)
    try:
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise RuntimeError(f"{cmd[0]} is not installed (apt-get install gcc buildah mmdebstrap busybox-static)") from None
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({result.returncode}):\n"
                           f"{result.stdout[-20000:]}\n{result.stderr[-20000:]}")
    return result.stdout


if __name__ == "__main__":
    for path in build_all():
        print(path)
