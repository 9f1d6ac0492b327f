"""Reading local files to store them: regular files only, never kernel files, never a swapped link."""

import os

import pytest

from ferry.core import errors, localfiles


def test_open_regular_reads_a_regular_file(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    with localfiles.open_regular(tmp_path / "f") as stream:
        assert stream.read() == b"data"


@pytest.mark.parametrize("path", ["/proc/self/environ", "/proc/self/status", "/sys/kernel/mm/transparent_hugepage/enabled"])
def test_open_regular_refuses_kernel_files(path):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(errors.PathEscapeError, match="kernel file"):
        localfiles.open_regular(os.path.realpath(path))


@pytest.mark.timeout(10)
def test_open_regular_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(errors.PathEscapeError, match="not a regular file"):
        localfiles.open_regular(tmp_path / "pipe")


def test_open_regular_refuses_a_link_swapped_in_for_the_file(tmp_path):
    (tmp_path / "f").symlink_to("/etc/hostname")
    with pytest.raises(errors.PathEscapeError, match="became a link"):
        localfiles.open_regular(tmp_path / "f")


def test_confined_refuses_links_out_and_keeps_links_in(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "real").write_text("x")
    (tmp_path / "out" / "inside").symlink_to("real")
    (tmp_path / "out" / "outside").symlink_to(tmp_path)
    assert localfiles.confined(tmp_path / "out" / "inside", tmp_path / "out") == (tmp_path / "out" / "real").resolve()
    with pytest.raises(errors.PathEscapeError, match="outside"):
        localfiles.confined(tmp_path / "out" / "outside", tmp_path / "out")


def test_the_store_never_uploads_kernel_files_even_when_asked(local_store, tmp_path):
    """Python tasks return paths of their own choosing; the runtime that uploads them holds keys."""
    (tmp_path / "env-link").symlink_to("/proc/self/environ")
    with pytest.raises(errors.PathEscapeError, match="kernel file"):
        local_store.upload_file(tmp_path / "env-link")
    with pytest.raises(errors.PathEscapeError, match="kernel file"):
        local_store.upload_directory("/proc/self")
