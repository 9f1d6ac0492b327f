"""Stores for the runtime tests: every test that takes ``store`` runs against the local store and
against the real S3 server (MinIO from the test cluster), with a fresh prefix each time."""

from __future__ import annotations

import functools
import http.server
import pathlib
import secrets
from collections.abc import Iterator

import pytest

import ferry
from tests.cluster.processes import http_server


@pytest.fixture(autouse=True)
def history_in_tmp(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Every run a test makes (here or in a ``ferry`` it starts) is recorded under ``tmp_path``,
    never in the user's own history; not through ``FERRY_CACHE_DIR``, which also says where the
    test cluster's binaries are."""
    path = tmp_path / "history.sqlite3"
    monkeypatch.setenv("FERRY_HISTORY", str(path))
    return path


def make_settings(tmp_path: pathlib.Path, raw_data_prefix: str, **overrides) -> ferry.Settings:
    return ferry.Settings(raw_data_prefix=raw_data_prefix, local_dir=tmp_path / "local",
                          cache_dir=tmp_path / "cache", **overrides)


@pytest.fixture
def local_store(tmp_path: pathlib.Path) -> ferry.Store:
    return ferry.Store(make_settings(tmp_path, (tmp_path / "raw").as_uri()))


@pytest.fixture
def s3_store(s3, tmp_path: pathlib.Path) -> ferry.Store:
    """Configured only through the AWS variables the fixture exports, as a pod would be."""
    return ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(6)}"))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> Iterator[ferry.Store]:
    """The current store for the test, local or S3."""
    store = request.getfixturevalue(f"{request.param}_store")
    with ferry.use_store(store):
        yield store


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory with everything that must survive a round trip."""
    root = tmp_path / "tree"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "empty dir" / "also empty").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "empty.bin").write_bytes(b"")
    (root / "nested" / "b.csv").write_text("x,y\n1,2\n")
    (root / "nested" / "deeper" / "données ü 😀.txt").write_text("unicode")
    (root / "with space.txt").write_text("spaces")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "link-to-a").symlink_to("a.txt")
    (root / "linked-dir").symlink_to("nested/deeper", target_is_directory=True)
    return root


def snapshot(root: pathlib.Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path under ``root`` with its content (None for directories) and permission bits."""
    return {p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def http_root(tmp_path: pathlib.Path) -> Iterator[tuple[pathlib.Path, str]]:
    """A directory served on loopback with the standard library's index pages: (root, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    with http_server(functools.partial(Quiet, directory=str(root))) as server:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
