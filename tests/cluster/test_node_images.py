"""The real node's images' pure pieces: the Ferry image's cache key and the pause program."""

import shutil
import signal
import struct
import subprocess
import time

import pytest

from tests.cluster import node_images

pytestmark = pytest.mark.skipif(shutil.which("buildah") is None,
                                reason="the real node's images are built with buildah (apt-get install buildah)")


@pytest.fixture
def context(tmp_path):
    """A repository with every kind of file the Ferry image's build context holds."""
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        (tmp_path / name).write_text(name)
    for package in ("runtime/ferry", "operator/ferry_operator"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    return tmp_path


def test_a_source_change_changes_the_ferry_key(context):
    before = node_images.ferry_context_digest(context)
    (context / "runtime" / "ferry" / "__init__.py").write_text("VERSION = 2\n")
    edited = node_images.ferry_context_digest(context)
    (context / "operator" / "ferry_operator" / "pods.py").write_text("")
    assert len({before, edited, node_images.ferry_context_digest(context)}) == 3


def test_what_dockerignore_leaves_out_does_not_change_the_ferry_key(context):
    before = node_images.ferry_context_digest(context)
    (context / "runtime" / "ferry" / "__pycache__").mkdir()
    (context / "runtime" / "ferry" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    (context / "operator" / "ferry_operator" / "stray.pyc").write_bytes(b"\0")
    (context / "runtime" / "ferry.egg-info").mkdir()
    (context / "runtime" / "ferry.egg-info" / "PKG-INFO").write_text("")
    (context / "tests").mkdir()
    (context / "tests" / "test_x.py").write_text("")
    assert node_images.ferry_context_digest(context) == before


def _has_interpreter(elf: bytes) -> bool:
    """Whether a 64-bit ELF file asks for a dynamic loader (has a PT_INTERP program header)."""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum))


def _catches(pid: int, signo: int) -> bool:
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return bool(int(status["SigCgt"], 16) & (1 << (signo - 1)))


def test_the_pause_program_is_static_and_exits_0_on_sigterm(tmp_path):
    pause = node_images.compile_pause(tmp_path / "pause")
    assert not _has_interpreter(pause.read_bytes())
    process = subprocess.Popen([pause])
    try:
        deadline = time.monotonic() + 5
        while not _catches(process.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
    finally:
        process.kill()
