"""Which images the test node can run, and what each one means on this machine.

The node pulls no images. Each entry says what the image's ENTRYPOINT, CMD and PATH would be,
with the image's tools replaced by the host's: shell images use the host's ``sh`` and coreutils,
``python`` uses the host interpreter, the Ferry image runs the ``ferry`` runtime installed in
the environment that runs the tests, and ``minio`` runs the MinIO the suite built for its S3
server. An image that is not listed cannot be run: its pods stay ``Pending`` with
``ErrImagePull``, as on a cluster whose registry does not have it.
"""

from __future__ import annotations

import dataclasses
import os
import sys

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclasses.dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    path: str


def _shell() -> Image:
    return Image(entrypoint=(), cmd=("sh",), path=SYSTEM_PATH)


def _python() -> Image:
    return Image(entrypoint=(), cmd=("python3",), path=f"{os.path.join(sys.base_prefix, 'bin')}:{SYSTEM_PATH}")


def _ferry() -> Image:
    # The environment running the tests has Ferry installed (pip install -e '.[dev]').
    return Image(entrypoint=("ferry",), cmd=(), path=f"{os.path.join(sys.prefix, 'bin')}:{SYSTEM_PATH}")


def _minio() -> Image:
    # The MinIO the suite builds for its S3 server (binaries.py), for charts that run one; the
    # official image's entrypoint script runs `minio` with the container's arguments.
    from tests.cluster import binaries, versions

    folder = binaries.cache_dir() / "bin" / f"minio-{versions.MINIO}"
    return Image(entrypoint=("minio",), cmd=(), path=f"{folder}:{SYSTEM_PATH}")


IMAGES = {
    "busybox": _shell,
    "alpine": _shell,
    "debian": _shell,
    "ubuntu": _shell,
    "bash": _shell,
    "python": _python,
    "ferry": _ferry,
    "minio": _minio,
}


def repository_name(image: str) -> str:
    """``ghcr.io/org/ferry:0.1@sha256:...`` → ``ferry``: the last path part, without tag or digest."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def resolve(image: str) -> Image | None:
    factory = IMAGES.get(repository_name(image))
    return factory() if factory else None
